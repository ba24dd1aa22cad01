"""The reporter's share page in the reporter's language (the language triage found in their post).

The same languages as the automatic replies and the dispatcher's reply templates. Every text is
short and calm; none carries anything the reporter said. A language without a block here gets
English. `page_texts` gives the page's and its script's texts, `consent_text` the exact words the
reporter agrees to (stored with the consent, in the language shown).
"""
from __future__ import annotations

from config import Settings

RTL_LANGUAGES = {"ar", "ur"}

_EN = {
    "link_public": '{service}: to share your location or photos with us, open {url} (one-time, {minutes} min). Emergency: call {number}.',
    "link_dm": ('{service} asks if you can share your location, photos or camera with the dispatcher. Open '
                'this one-time link on your phone (valid {minutes} min): {url} Nothing is shared unless you '
                'agree. In an emergency call {number}.'),
    "title": "Share with {service}",
    "call": "In danger now? Call",
    "consent_h1": "A dispatcher is asking you to share",
    "consent_p1": "A dispatcher at {service} is handling your report. Sharing where you are and what you can "
                  "see helps them send the right help to the right place.",
    "consent_choose": "If you agree, you choose what to send:",
    "scope_location": "your location, while you keep location sharing on",
    "scope_photos": "photos you pick",
    "scope_camera": "your camera, while you keep “live” on (picture only, no sound)",
    "scope_text": "messages you type",
    "nothing_until": "Nothing is shared until you agree.",
    "nothing_else": "Nothing else on your phone is accessed. You can press “Stop sharing” at any time; "
                    "the link stops working at {time}.",
    "kept": "What is kept: everything you send, with the time it arrived and a fingerprint (hash) that proves "
            "it was not changed, the time you agreed and your browser’s name. It is kept as evidence for this "
            "incident for {days} days, longer only if the law requires it.",
    "agree": "I agree — let me share",
    "decline": "No, don’t share anything",
    "sharing_h1": "Share with the dispatcher",
    "choose": "Choose what to share.",
    "btn_location": "Share my location",
    "btn_photo": "Send photos",
    "btn_live": "Go live (camera)",
    "text_label": "Message to the dispatcher",
    "btn_text": "Send message",
    "btn_stop": "Stop sharing",
    "kept_short": "Photos can be up to {mb} MB. Everything you send is kept as evidence for this incident for "
                  "{days} days. Stopping ends location, camera and this link.",
    "stopped_h1": "You stopped sharing",
    "stopped_p": "Nothing more is being sent. If you need help, call",
    "consent_text": "I agree to share with {service}, until I press Stop or the link expires: my location while "
                    "sharing is on, photos I choose, my camera while live is on, and messages I type. They are "
                    "kept as evidence for this incident for {days} days, or longer only if required by law.",
    "closed_expired": "This link has expired.",
    "closed_revoked": "This link was cancelled by the dispatcher.",
    "closed_used": "This link has already been used on another device.",
    "closed_declined": "You chose not to share. Nothing was sent.",
    "closed_ended": "You stopped sharing. Thank you.",
    "closed_invalid": "This link is not valid.",
    "closed_new_link": "Sharing links work once, on one phone, for a short time. If a dispatcher is in touch "
                       "with you, ask them for a new link.",
    "closed_call": "If you need help, call",
    "js_frames": "Live: {n} pictures received by the dispatcher.",
    "js_location_received": "Location received by the dispatcher.",
    "js_text_received": "Message received.",
    "js_no_geo": "This browser cannot share location.",
    "js_sharing_location": "Sharing location",
    "js_finding": "Finding your location…",
    "js_accuracy": "Sharing location (accurate to about {m} m).",
    "js_location_refused": "Location permission was refused.",
    "js_location_unavailable": "Location not available.",
    "js_sending_photo": "Sending photo…",
    "js_photo_received": "Photo received by the dispatcher.",
    "js_photo_failed": "Photo not sent.",
    "js_photo_offline": "Photo not sent: no connection.",
    "js_no_camera": "This browser cannot use the camera.",
    "js_live_on": "Live — camera on",
    "js_live_starting": "Live: starting…",
    "js_camera_refused": "Camera not available: permission refused.",
    "js_camera_unavailable": "Camera not available.",
    "js_sending_text": "Sending message…",
    "js_not_sent": "Not sent.",
    "js_reconnecting": "Connection lost — reconnecting…",
    "js_stopped": "Sharing has stopped.",
    "js_closed_expired": "This link has expired.",
    "js_closed_revoked": "The dispatcher cancelled this link.",
    "js_closed_used": "This link is in use on another device.",
    "js_closed_declined": "Sharing was not agreed.",
    "js_closed_invalid": "This link is not valid.",
}

_ES = {
    "link_public": '{service}: para compartir su ubicación o fotos con nosotros, abra {url} (un solo uso, {minutes} min). Emergencias: llame al {number}.',
    "link_dm": ('{service} le pregunta si puede compartir su ubicación, fotos o cámara con el operador. '
                'Abra este enlace de un solo uso en su teléfono (válido {minutes} min): {url} No se '
                'comparte nada sin su permiso. En una emergencia llame al {number}.'),
    "title": "Compartir con {service}",
    "call": "¿En peligro ahora? Llame al",
    "consent_h1": "Un operador le pide que comparta información",
    "consent_p1": "Un operador de {service} está atendiendo su aviso. Compartir dónde está y lo que ve le ayuda "
                  "a enviar la ayuda adecuada al lugar correcto.",
    "consent_choose": "Si está de acuerdo, usted elige qué enviar:",
    "scope_location": "su ubicación, mientras mantenga activado compartir ubicación",
    "scope_photos": "las fotos que elija",
    "scope_camera": "su cámara, mientras mantenga «en directo» activado (solo imagen, sin sonido)",
    "scope_text": "los mensajes que escriba",
    "nothing_until": "No se comparte nada hasta que usted acepte.",
    "nothing_else": "No se accede a nada más de su teléfono. Puede pulsar «Dejar de compartir» en cualquier "
                    "momento; el enlace deja de funcionar a las {time}.",
    "kept": "Qué se guarda: todo lo que envíe, con la hora de llegada y una huella (hash) que demuestra que no "
            "se modificó, la hora en que aceptó y el nombre de su navegador. Se guarda como prueba de este "
            "incidente durante {days} días, más tiempo solo si la ley lo exige.",
    "agree": "Acepto — quiero compartir",
    "decline": "No, no compartir nada",
    "sharing_h1": "Compartir con el operador",
    "choose": "Elija qué compartir.",
    "btn_location": "Compartir mi ubicación",
    "btn_photo": "Enviar fotos",
    "btn_live": "En directo (cámara)",
    "text_label": "Mensaje para el operador",
    "btn_text": "Enviar mensaje",
    "btn_stop": "Dejar de compartir",
    "kept_short": "Las fotos pueden ocupar hasta {mb} MB. Todo lo que envíe se guarda como prueba de este "
                  "incidente durante {days} días. Al dejar de compartir se detienen la ubicación, la cámara y "
                  "este enlace.",
    "stopped_h1": "Ha dejado de compartir",
    "stopped_p": "Ya no se envía nada más. Si necesita ayuda, llame al",
    "consent_text": "Acepto compartir con {service}, hasta que pulse Detener o el enlace caduque: mi ubicación "
                    "mientras esté activado compartirla, las fotos que elija, mi cámara mientras esté en directo "
                    "y los mensajes que escriba. Se guardan como prueba de este incidente durante {days} días, o "
                    "más tiempo solo si la ley lo exige.",
    "closed_expired": "Este enlace ha caducado.",
    "closed_revoked": "El operador ha cancelado este enlace.",
    "closed_used": "Este enlace ya se ha usado en otro dispositivo.",
    "closed_declined": "Ha decidido no compartir. No se ha enviado nada.",
    "closed_ended": "Ha dejado de compartir. Gracias.",
    "closed_invalid": "Este enlace no es válido.",
    "closed_new_link": "Los enlaces para compartir funcionan una vez, en un solo teléfono, durante poco tiempo. "
                       "Si un operador está en contacto con usted, pídale un enlace nuevo.",
    "closed_call": "Si necesita ayuda, llame al",
    "js_frames": "En directo: el operador ha recibido {n} imágenes.",
    "js_location_received": "El operador ha recibido su ubicación.",
    "js_text_received": "Mensaje recibido.",
    "js_no_geo": "Este navegador no puede compartir la ubicación.",
    "js_sharing_location": "Compartiendo ubicación",
    "js_finding": "Buscando su ubicación…",
    "js_accuracy": "Compartiendo ubicación (precisión de unos {m} m).",
    "js_location_refused": "Se denegó el permiso de ubicación.",
    "js_location_unavailable": "Ubicación no disponible.",
    "js_sending_photo": "Enviando foto…",
    "js_photo_received": "El operador ha recibido la foto.",
    "js_photo_failed": "Foto no enviada.",
    "js_photo_offline": "Foto no enviada: sin conexión.",
    "js_no_camera": "Este navegador no puede usar la cámara.",
    "js_live_on": "En directo — cámara encendida",
    "js_live_starting": "En directo: iniciando…",
    "js_camera_refused": "Cámara no disponible: permiso denegado.",
    "js_camera_unavailable": "Cámara no disponible.",
    "js_sending_text": "Enviando mensaje…",
    "js_not_sent": "No enviado.",
    "js_reconnecting": "Conexión perdida — reconectando…",
    "js_stopped": "Se ha dejado de compartir.",
    "js_closed_expired": "Este enlace ha caducado.",
    "js_closed_revoked": "El operador ha cancelado este enlace.",
    "js_closed_used": "Este enlace se está usando en otro dispositivo.",
    "js_closed_declined": "No se aceptó compartir.",
    "js_closed_invalid": "Este enlace no es válido.",
}

_FR = {
    "link_public": ('{service} : pour partager votre position ou des photos avec nous, ouvrez {url} (usage '
                    'unique, {minutes} min). Urgence : appelez le {number}.'),
    "link_dm": ('{service} vous demande si vous pouvez partager votre position, des photos ou votre caméra '
                "avec l'opérateur. Ouvrez ce lien à usage unique sur votre téléphone (valable {minutes} "
                "min) : {url} Rien n'est partagé sans votre accord. En cas d'urgence, appelez le {number}."),
    "title": "Partager avec {service}",
    "call": "En danger maintenant ? Appelez le",
    "consent_h1": "Un opérateur vous demande de partager",
    "consent_p1": "Un opérateur de {service} traite votre signalement. Partager l'endroit où vous êtes et ce "
                  "que vous voyez l'aide à envoyer les bons secours au bon endroit.",
    "consent_choose": "Si vous êtes d'accord, vous choisissez ce que vous envoyez :",
    "scope_location": "votre position, tant que le partage de position reste activé",
    "scope_photos": "les photos que vous choisissez",
    "scope_camera": "votre caméra, tant que le « direct » reste activé (image seulement, sans son)",
    "scope_text": "les messages que vous écrivez",
    "nothing_until": "Rien n'est partagé tant que vous n'avez pas accepté.",
    "nothing_else": "Rien d'autre sur votre téléphone n'est consulté. Vous pouvez appuyer sur « Arrêter le "
                    "partage » à tout moment ; le lien cesse de fonctionner à {time}.",
    "kept": "Ce qui est conservé : tout ce que vous envoyez, avec l'heure d'arrivée et une empreinte (hash) qui "
            "prouve que rien n'a été modifié, l'heure de votre accord et le nom de votre navigateur. C'est "
            "conservé comme preuve pour cet incident pendant {days} jours, plus longtemps seulement si la loi "
            "l'exige.",
    "agree": "J'accepte — je veux partager",
    "decline": "Non, ne rien partager",
    "sharing_h1": "Partager avec l'opérateur",
    "choose": "Choisissez ce que vous partagez.",
    "btn_location": "Partager ma position",
    "btn_photo": "Envoyer des photos",
    "btn_live": "Direct (caméra)",
    "text_label": "Message pour l'opérateur",
    "btn_text": "Envoyer le message",
    "btn_stop": "Arrêter le partage",
    "kept_short": "Les photos peuvent faire jusqu'à {mb} Mo. Tout ce que vous envoyez est conservé comme "
                  "preuve pour cet incident pendant {days} jours. Arrêter met fin à la position, à la caméra "
                  "et à ce lien.",
    "stopped_h1": "Vous avez arrêté le partage",
    "stopped_p": "Plus rien n'est envoyé. Si vous avez besoin d'aide, appelez le",
    "consent_text": "J'accepte de partager avec {service}, jusqu'à ce que j'appuie sur Arrêter ou que le lien "
                    "expire : ma position tant que le partage est activé, les photos que je choisis, ma caméra "
                    "tant que le direct est activé et les messages que j'écris. Ils sont conservés comme preuve "
                    "pour cet incident pendant {days} jours, ou plus longtemps seulement si la loi l'exige.",
    "closed_expired": "Ce lien a expiré.",
    "closed_revoked": "Ce lien a été annulé par l'opérateur.",
    "closed_used": "Ce lien a déjà été utilisé sur un autre appareil.",
    "closed_declined": "Vous avez choisi de ne pas partager. Rien n'a été envoyé.",
    "closed_ended": "Vous avez arrêté le partage. Merci.",
    "closed_invalid": "Ce lien n'est pas valide.",
    "closed_new_link": "Les liens de partage fonctionnent une fois, sur un seul téléphone, pendant peu de temps. "
                       "Si un opérateur est en contact avec vous, demandez-lui un nouveau lien.",
    "closed_call": "Si vous avez besoin d'aide, appelez le",
    "js_frames": "Direct : {n} images reçues par l'opérateur.",
    "js_location_received": "Position reçue par l'opérateur.",
    "js_text_received": "Message reçu.",
    "js_no_geo": "Ce navigateur ne peut pas partager la position.",
    "js_sharing_location": "Position partagée",
    "js_finding": "Recherche de votre position…",
    "js_accuracy": "Position partagée (précision d'environ {m} m).",
    "js_location_refused": "L'autorisation de position a été refusée.",
    "js_location_unavailable": "Position indisponible.",
    "js_sending_photo": "Envoi de la photo…",
    "js_photo_received": "Photo reçue par l'opérateur.",
    "js_photo_failed": "Photo non envoyée.",
    "js_photo_offline": "Photo non envoyée : pas de connexion.",
    "js_no_camera": "Ce navigateur ne peut pas utiliser la caméra.",
    "js_live_on": "Direct — caméra allumée",
    "js_live_starting": "Direct : démarrage…",
    "js_camera_refused": "Caméra indisponible : autorisation refusée.",
    "js_camera_unavailable": "Caméra indisponible.",
    "js_sending_text": "Envoi du message…",
    "js_not_sent": "Non envoyé.",
    "js_reconnecting": "Connexion perdue — reconnexion…",
    "js_stopped": "Le partage est arrêté.",
    "js_closed_expired": "Ce lien a expiré.",
    "js_closed_revoked": "L'opérateur a annulé ce lien.",
    "js_closed_used": "Ce lien est utilisé sur un autre appareil.",
    "js_closed_declined": "Le partage n'a pas été accepté.",
    "js_closed_invalid": "Ce lien n'est pas valide.",
}

_DE = {
    "link_public": '{service}: Um Standort oder Fotos mit uns zu teilen, öffnen Sie {url} (einmalig, {minutes} Min.). Notfall: {number} anrufen.',
    "link_dm": ('{service} fragt, ob Sie Ihren Standort, Fotos oder Ihre Kamera mit der Leitstelle teilen '
                'können. Öffnen Sie diesen einmaligen Link auf Ihrem Telefon (gültig {minutes} Min.): {url} '
                'Nichts wird ohne Ihre Zustimmung geteilt. Im Notfall rufen Sie {number} an.'),
    "title": "Mit {service} teilen",
    "call": "Jetzt in Gefahr? Rufen Sie an:",
    "consent_h1": "Eine Leitstelle bittet Sie, etwas zu teilen",
    "consent_p1": "Eine Disponentin oder ein Disponent von {service} bearbeitet Ihre Meldung. Wenn Sie teilen, "
                  "wo Sie sind und was Sie sehen, kann die richtige Hilfe an den richtigen Ort geschickt werden.",
    "consent_choose": "Wenn Sie zustimmen, wählen Sie selbst, was Sie senden:",
    "scope_location": "Ihren Standort, solange die Standortfreigabe an ist",
    "scope_photos": "Fotos, die Sie auswählen",
    "scope_camera": "Ihre Kamera, solange „live“ an ist (nur Bild, kein Ton)",
    "scope_text": "Nachrichten, die Sie schreiben",
    "nothing_until": "Nichts wird geteilt, bevor Sie zustimmen.",
    "nothing_else": "Auf nichts anderes auf Ihrem Telefon wird zugegriffen. Sie können jederzeit „Teilen "
                    "beenden“ drücken; der Link funktioniert bis {time}.",
    "kept": "Was gespeichert wird: alles, was Sie senden, mit der Ankunftszeit und einem Fingerabdruck (Hash), "
            "der zeigt, dass nichts verändert wurde, der Zeitpunkt Ihrer Zustimmung und der Name Ihres Browsers. "
            "Es wird als Beweismittel zu diesem Einsatz {days} Tage lang aufbewahrt, länger nur, wenn das "
            "Gesetz es verlangt.",
    "agree": "Ich stimme zu — teilen",
    "decline": "Nein, nichts teilen",
    "sharing_h1": "Mit der Leitstelle teilen",
    "choose": "Wählen Sie, was Sie teilen möchten.",
    "btn_location": "Meinen Standort teilen",
    "btn_photo": "Fotos senden",
    "btn_live": "Live (Kamera)",
    "text_label": "Nachricht an die Leitstelle",
    "btn_text": "Nachricht senden",
    "btn_stop": "Teilen beenden",
    "kept_short": "Fotos dürfen bis zu {mb} MB groß sein. Alles, was Sie senden, wird als Beweismittel zu "
                  "diesem Einsatz {days} Tage lang aufbewahrt. Beenden stoppt Standort, Kamera und diesen Link.",
    "stopped_h1": "Sie haben das Teilen beendet",
    "stopped_p": "Es wird nichts mehr gesendet. Wenn Sie Hilfe brauchen, rufen Sie an:",
    "consent_text": "Ich stimme zu, mit {service} zu teilen, bis ich Beenden drücke oder der Link abläuft: "
                    "meinen Standort, solange die Freigabe an ist, Fotos, die ich auswähle, meine Kamera, "
                    "solange live an ist, und Nachrichten, die ich schreibe. Sie werden als Beweismittel zu "
                    "diesem Einsatz {days} Tage lang aufbewahrt, länger nur, wenn das Gesetz es verlangt.",
    "closed_expired": "Dieser Link ist abgelaufen.",
    "closed_revoked": "Dieser Link wurde von der Leitstelle zurückgezogen.",
    "closed_used": "Dieser Link wurde bereits auf einem anderen Gerät benutzt.",
    "closed_declined": "Sie haben entschieden, nichts zu teilen. Es wurde nichts gesendet.",
    "closed_ended": "Sie haben das Teilen beendet. Danke.",
    "closed_invalid": "Dieser Link ist ungültig.",
    "closed_new_link": "Links zum Teilen funktionieren einmal, auf einem Telefon, für kurze Zeit. Wenn die "
                       "Leitstelle mit Ihnen in Kontakt ist, bitten Sie um einen neuen Link.",
    "closed_call": "Wenn Sie Hilfe brauchen, rufen Sie an:",
    "js_frames": "Live: {n} Bilder bei der Leitstelle angekommen.",
    "js_location_received": "Standort bei der Leitstelle angekommen.",
    "js_text_received": "Nachricht angekommen.",
    "js_no_geo": "Dieser Browser kann keinen Standort teilen.",
    "js_sharing_location": "Standort wird geteilt",
    "js_finding": "Standort wird gesucht…",
    "js_accuracy": "Standort wird geteilt (auf etwa {m} m genau).",
    "js_location_refused": "Die Standortfreigabe wurde abgelehnt.",
    "js_location_unavailable": "Standort nicht verfügbar.",
    "js_sending_photo": "Foto wird gesendet…",
    "js_photo_received": "Foto bei der Leitstelle angekommen.",
    "js_photo_failed": "Foto nicht gesendet.",
    "js_photo_offline": "Foto nicht gesendet: keine Verbindung.",
    "js_no_camera": "Dieser Browser kann die Kamera nicht benutzen.",
    "js_live_on": "Live — Kamera an",
    "js_live_starting": "Live: startet…",
    "js_camera_refused": "Kamera nicht verfügbar: Zugriff abgelehnt.",
    "js_camera_unavailable": "Kamera nicht verfügbar.",
    "js_sending_text": "Nachricht wird gesendet…",
    "js_not_sent": "Nicht gesendet.",
    "js_reconnecting": "Verbindung unterbrochen — neuer Versuch…",
    "js_stopped": "Das Teilen wurde beendet.",
    "js_closed_expired": "Dieser Link ist abgelaufen.",
    "js_closed_revoked": "Die Leitstelle hat diesen Link zurückgezogen.",
    "js_closed_used": "Dieser Link wird auf einem anderen Gerät benutzt.",
    "js_closed_declined": "Dem Teilen wurde nicht zugestimmt.",
    "js_closed_invalid": "Dieser Link ist ungültig.",
}

_AR = {
    "link_public": '{service}: لمشاركة موقعك أو صور معنا، افتح {url} (لمرة واحدة، {minutes} دقيقة). للطوارئ: اتصل بالرقم {number}.',
    "link_dm": ('يسألك {service} إن كان بإمكانك مشاركة موقعك أو صور أو الكاميرا مع موظف الطوارئ. افتح هذا '
                'الرابط المخصص لمرة واحدة على هاتفك (صالح لمدة {minutes} دقيقة): {url} لا تتم مشاركة أي شيء '
                'دون موافقتك. في حالة الطوارئ اتصل بالرقم {number}.'),
    "title": "المشاركة مع {service}",
    "call": "في خطر الآن؟ اتصل بالرقم",
    "consent_h1": "يطلب منك أحد موظفي الطوارئ المشاركة",
    "consent_p1": "يتابع أحد موظفي {service} بلاغك. مشاركة مكانك وما تراه تساعده على إرسال المساعدة المناسبة "
                  "إلى المكان الصحيح.",
    "consent_choose": "إن وافقت، فأنت تختار ما ترسله:",
    "scope_location": "موقعك، ما دامت مشاركة الموقع مفعّلة",
    "scope_photos": "الصور التي تختارها",
    "scope_camera": "الكاميرا، ما دام «البث المباشر» مفعّلًا (صورة فقط، بلا صوت)",
    "scope_text": "الرسائل التي تكتبها",
    "nothing_until": "لا تتم مشاركة أي شيء قبل موافقتك.",
    "nothing_else": "لا يتم الوصول إلى أي شيء آخر في هاتفك. يمكنك الضغط على «إيقاف المشاركة» في أي وقت؛ "
                    "ويتوقف الرابط عن العمل الساعة {time}.",
    "kept": "ما يتم حفظه: كل ما ترسله، مع وقت وصوله وبصمة رقمية (hash) تثبت أنه لم يُعدَّل، ووقت موافقتك واسم "
            "متصفحك. يُحفظ كدليل لهذا البلاغ لمدة {days} يومًا، ولمدة أطول فقط إذا اقتضى القانون ذلك.",
    "agree": "أوافق — أريد المشاركة",
    "decline": "لا، لا تشارك أي شيء",
    "sharing_h1": "المشاركة مع موظف الطوارئ",
    "choose": "اختر ما تريد مشاركته.",
    "btn_location": "مشاركة موقعي",
    "btn_photo": "إرسال صور",
    "btn_live": "بث مباشر (الكاميرا)",
    "text_label": "رسالة إلى موظف الطوارئ",
    "btn_text": "إرسال الرسالة",
    "btn_stop": "إيقاف المشاركة",
    "kept_short": "يمكن أن يصل حجم الصورة إلى {mb} ميغابايت. كل ما ترسله يُحفظ كدليل لهذا البلاغ لمدة {days} "
                  "يومًا. الإيقاف ينهي مشاركة الموقع والكاميرا وهذا الرابط.",
    "stopped_h1": "أوقفت المشاركة",
    "stopped_p": "لن يُرسل أي شيء بعد الآن. إذا احتجت إلى المساعدة، اتصل بالرقم",
    "consent_text": "أوافق على المشاركة مع {service} حتى أضغط على إيقاف أو تنتهي صلاحية الرابط: موقعي ما دامت "
                    "المشاركة مفعّلة، والصور التي أختارها، والكاميرا ما دام البث المباشر مفعّلًا، والرسائل التي "
                    "أكتبها. تُحفظ كدليل لهذا البلاغ لمدة {days} يومًا، أو لمدة أطول فقط إذا اقتضى القانون ذلك.",
    "closed_expired": "انتهت صلاحية هذا الرابط.",
    "closed_revoked": "ألغى موظف الطوارئ هذا الرابط.",
    "closed_used": "تم استخدام هذا الرابط على جهاز آخر.",
    "closed_declined": "اخترت عدم المشاركة. لم يُرسل أي شيء.",
    "closed_ended": "أوقفت المشاركة. شكرًا لك.",
    "closed_invalid": "هذا الرابط غير صالح.",
    "closed_new_link": "روابط المشاركة تعمل مرة واحدة، على هاتف واحد، لوقت قصير. إذا كان موظف الطوارئ على "
                       "تواصل معك، فاطلب منه رابطًا جديدًا.",
    "closed_call": "إذا احتجت إلى المساعدة، اتصل بالرقم",
    "js_frames": "بث مباشر: عدد الصور التي وصلت إلى موظف الطوارئ: {n}.",
    "js_location_received": "وصل موقعك إلى موظف الطوارئ.",
    "js_text_received": "وصلت الرسالة.",
    "js_no_geo": "لا يستطيع هذا المتصفح مشاركة الموقع.",
    "js_sharing_location": "تتم مشاركة الموقع",
    "js_finding": "جارٍ تحديد موقعك…",
    "js_accuracy": "تتم مشاركة الموقع (بدقة حوالي {m} م).",
    "js_location_refused": "تم رفض إذن الموقع.",
    "js_location_unavailable": "الموقع غير متاح.",
    "js_sending_photo": "جارٍ إرسال الصورة…",
    "js_photo_received": "وصلت الصورة إلى موظف الطوارئ.",
    "js_photo_failed": "لم تُرسل الصورة.",
    "js_photo_offline": "لم تُرسل الصورة: لا يوجد اتصال.",
    "js_no_camera": "لا يستطيع هذا المتصفح استخدام الكاميرا.",
    "js_live_on": "بث مباشر — الكاميرا تعمل",
    "js_live_starting": "بث مباشر: جارٍ البدء…",
    "js_camera_refused": "الكاميرا غير متاحة: تم رفض الإذن.",
    "js_camera_unavailable": "الكاميرا غير متاحة.",
    "js_sending_text": "جارٍ إرسال الرسالة…",
    "js_not_sent": "لم تُرسل.",
    "js_reconnecting": "انقطع الاتصال — جارٍ إعادة الاتصال…",
    "js_stopped": "توقفت المشاركة.",
    "js_closed_expired": "انتهت صلاحية هذا الرابط.",
    "js_closed_revoked": "ألغى موظف الطوارئ هذا الرابط.",
    "js_closed_used": "هذا الرابط مستخدم على جهاز آخر.",
    "js_closed_declined": "لم تتم الموافقة على المشاركة.",
    "js_closed_invalid": "هذا الرابط غير صالح.",
}

_UR = {
    "link_public": '{service}: اپنا مقام یا تصویریں ہمارے ساتھ شیئر کرنے کے لیے {url} کھولیں (ایک بار، {minutes} منٹ)۔ ایمرجنسی: {number} پر کال کریں۔',
    "link_dm": ('{service} پوچھ رہا ہے کہ کیا آپ اپنا مقام، تصویریں یا کیمرا ڈسپیچر کے ساتھ شیئر کر سکتے '
                'ہیں۔ یہ ایک بار کا لنک اپنے فون پر کھولیں ({minutes} منٹ کے لیے درست): {url} آپ کی رضامندی '
                'کے بغیر کچھ شیئر نہیں ہوتا۔ ایمرجنسی میں {number} پر کال کریں۔'),
    "title": "{service} کے ساتھ شیئر کریں",
    "call": "ابھی خطرے میں ہیں؟ کال کریں",
    "consent_h1": "ایک ڈسپیچر آپ سے شیئر کرنے کو کہہ رہا ہے",
    "consent_p1": "{service} کا ایک ڈسپیچر آپ کی اطلاع دیکھ رہا ہے۔ آپ کہاں ہیں اور کیا دیکھ رہے ہیں، یہ شیئر "
                  "کرنے سے صحیح مدد صحیح جگہ بھیجنے میں مدد ملتی ہے۔",
    "consent_choose": "اگر آپ متفق ہیں تو آپ خود چنیں کہ کیا بھیجنا ہے:",
    "scope_location": "آپ کا مقام، جب تک مقام شیئر کرنا آن ہے",
    "scope_photos": "وہ تصویریں جو آپ چنیں",
    "scope_camera": "آپ کا کیمرا، جب تک «لائیو» آن ہے (صرف تصویر، آواز نہیں)",
    "scope_text": "وہ پیغامات جو آپ لکھیں",
    "nothing_until": "آپ کی رضامندی کے بغیر کچھ شیئر نہیں ہوتا۔",
    "nothing_else": "آپ کے فون پر کسی اور چیز تک رسائی نہیں ہوتی۔ آپ کسی بھی وقت «شیئر کرنا بند کریں» دبا "
                    "سکتے ہیں؛ یہ لنک {time} پر کام کرنا بند کر دے گا۔",
    "kept": "کیا محفوظ رکھا جاتا ہے: جو کچھ آپ بھیجیں، اس کے پہنچنے کا وقت اور ایک فنگرپرنٹ (hash) جو ثابت "
            "کرتا ہے کہ اس میں تبدیلی نہیں ہوئی، آپ کی رضامندی کا وقت اور آپ کے براؤزر کا نام۔ یہ اس واقعے کے "
            "ثبوت کے طور پر {days} دن تک رکھا جاتا ہے، زیادہ صرف اس صورت میں جب قانون تقاضا کرے۔",
    "agree": "میں متفق ہوں — شیئر کرنے دیں",
    "decline": "نہیں، کچھ بھی شیئر نہ کریں",
    "sharing_h1": "ڈسپیچر کے ساتھ شیئر کریں",
    "choose": "چنیں کہ کیا شیئر کرنا ہے۔",
    "btn_location": "میرا مقام شیئر کریں",
    "btn_photo": "تصویریں بھیجیں",
    "btn_live": "لائیو (کیمرا)",
    "text_label": "ڈسپیچر کے لیے پیغام",
    "btn_text": "پیغام بھیجیں",
    "btn_stop": "شیئر کرنا بند کریں",
    "kept_short": "تصویریں {mb} MB تک ہو سکتی ہیں۔ جو کچھ آپ بھیجیں وہ اس واقعے کے ثبوت کے طور پر {days} دن "
                  "تک رکھا جاتا ہے۔ بند کرنے سے مقام، کیمرا اور یہ لنک بند ہو جاتے ہیں۔",
    "stopped_h1": "آپ نے شیئر کرنا بند کر دیا",
    "stopped_p": "اب کچھ نہیں بھیجا جا رہا۔ اگر آپ کو مدد چاہیے تو کال کریں",
    "consent_text": "میں {service} کے ساتھ شیئر کرنے پر متفق ہوں، جب تک میں بند نہ دباؤں یا لنک ختم نہ ہو: "
                    "میرا مقام جب تک شیئرنگ آن ہے، وہ تصویریں جو میں چنوں، میرا کیمرا جب تک لائیو آن ہے، اور وہ "
                    "پیغامات جو میں لکھوں۔ یہ اس واقعے کے ثبوت کے طور پر {days} دن تک رکھے جاتے ہیں، زیادہ صرف "
                    "اس صورت میں جب قانون تقاضا کرے۔",
    "closed_expired": "اس لنک کی مدت ختم ہو گئی ہے۔",
    "closed_revoked": "ڈسپیچر نے یہ لنک منسوخ کر دیا ہے۔",
    "closed_used": "یہ لنک پہلے ہی کسی اور ڈیوائس پر استعمال ہو چکا ہے۔",
    "closed_declined": "آپ نے شیئر نہ کرنے کا انتخاب کیا۔ کچھ نہیں بھیجا گیا۔",
    "closed_ended": "آپ نے شیئر کرنا بند کر دیا۔ شکریہ۔",
    "closed_invalid": "یہ لنک درست نہیں ہے۔",
    "closed_new_link": "شیئر کرنے کے لنک ایک بار، ایک فون پر، تھوڑی دیر کے لیے کام کرتے ہیں۔ اگر ڈسپیچر آپ سے "
                       "رابطے میں ہے تو نیا لنک مانگیں۔",
    "closed_call": "اگر آپ کو مدد چاہیے تو کال کریں",
    "js_frames": "لائیو: ڈسپیچر کو {n} تصویریں مل گئیں۔",
    "js_location_received": "ڈسپیچر کو آپ کا مقام مل گیا۔",
    "js_text_received": "پیغام مل گیا۔",
    "js_no_geo": "یہ براؤزر مقام شیئر نہیں کر سکتا۔",
    "js_sharing_location": "مقام شیئر ہو رہا ہے",
    "js_finding": "آپ کا مقام تلاش کیا جا رہا ہے…",
    "js_accuracy": "مقام شیئر ہو رہا ہے (تقریباً {m} میٹر تک درست)۔",
    "js_location_refused": "مقام کی اجازت نہیں دی گئی۔",
    "js_location_unavailable": "مقام دستیاب نہیں۔",
    "js_sending_photo": "تصویر بھیجی جا رہی ہے…",
    "js_photo_received": "ڈسپیچر کو تصویر مل گئی۔",
    "js_photo_failed": "تصویر نہیں بھیجی گئی۔",
    "js_photo_offline": "تصویر نہیں بھیجی گئی: کنکشن نہیں ہے۔",
    "js_no_camera": "یہ براؤزر کیمرا استعمال نہیں کر سکتا۔",
    "js_live_on": "لائیو — کیمرا آن ہے",
    "js_live_starting": "لائیو: شروع ہو رہا ہے…",
    "js_camera_refused": "کیمرا دستیاب نہیں: اجازت نہیں دی گئی۔",
    "js_camera_unavailable": "کیمرا دستیاب نہیں۔",
    "js_sending_text": "پیغام بھیجا جا رہا ہے…",
    "js_not_sent": "نہیں بھیجا گیا۔",
    "js_reconnecting": "کنکشن ٹوٹ گیا — دوبارہ جوڑا جا رہا ہے…",
    "js_stopped": "شیئر کرنا بند ہو گیا۔",
    "js_closed_expired": "اس لنک کی مدت ختم ہو گئی ہے۔",
    "js_closed_revoked": "ڈسپیچر نے یہ لنک منسوخ کر دیا ہے۔",
    "js_closed_used": "یہ لنک کسی اور ڈیوائس پر استعمال ہو رہا ہے۔",
    "js_closed_declined": "شیئر کرنے پر رضامندی نہیں دی گئی۔",
    "js_closed_invalid": "یہ لنک درست نہیں ہے۔",
}

TEXTS: dict[str, dict[str, str]] = {"en": _EN, "es": _ES, "fr": _FR, "de": _DE, "ar": _AR, "ur": _UR}


def page_language(language: str | None) -> str:
    """The share page's language for a triage language code ("es", "pt-BR", "und", ...)."""
    code = (language or "").split("-")[0].lower()
    return code if code in TEXTS else "en"


def page_texts(language: str | None) -> dict[str, str]:
    return TEXTS[page_language(language)]


def direction(language: str | None) -> str:
    return "rtl" if page_language(language) in RTL_LANGUAGES else "ltr"


def consent_text(settings: Settings, language: str | None = None) -> str:
    """The exact words the reporter agrees to, in the language the page showed them."""
    return page_texts(language)["consent_text"].format(service=settings.service.name,
                                                       days=settings.retention.media_days)


def script_texts(language: str | None) -> dict[str, str]:
    """The texts the page's script shows (status lines), for a JSON data block on the page."""
    page = page_texts(language)
    return {"you_stopped": page["stopped_h1"], **{k[3:]: v for k, v in page.items() if k.startswith("js_")}}


def link_message(settings: Settings, language: str | None, url: str, minutes: int, public: bool) -> str:
    """The message carrying a share link, in the reporter's language (public: short, for a post)."""
    return page_texts(language)["link_public" if public else "link_dm"].format(
        service=settings.service.name, url=url, minutes=minutes, number=settings.service.emergency_number)
