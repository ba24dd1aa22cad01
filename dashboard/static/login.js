/* Sign-in page: a form sent just as the session ended did not go through. Keep it, marked
 * unsent, so the dashboard can offer it again after sign-in (never replayed unasked). */
(function () {
  "use strict";
  try {
    var inflight = sessionStorage.getItem("flare:inflight");
    if (inflight && document.querySelector("form[data-expired]")) sessionStorage.setItem("flare:unsent", inflight);
    sessionStorage.removeItem("flare:inflight");
  } catch (e) { /* storage unavailable: nothing to keep */ }
})();
