"""Administration: people and roles, escalation policies, reply templates, connector health."""
from __future__ import annotations

import logging
import secrets
from pathlib import Path

import redis
import yaml
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from dashboard.deps import CSRF, DB, RowId, require
from dashboard.routes.common import action_done, action_failed, render
from dashboard.routes.reply_templates import reply_templates
from dashboard.routes.supervisor import connector_health
from dashboard.security import create_user, token_digest
from models.access import audit
from dashboard.sessions import COPY_TTL_S, live_session_counts, revoke_user_sessions
from flows import escalate
from escalation.policy import DEFAULT_POLICY_FILE, PolicySet
from models.enums import Role
from models.tables import User

log = logging.getLogger("flare.web")

router = APIRouter(include_in_schema=False)

MIN_PASSWORD_CHARS = 12
MAX_POLICY_BYTES = 64_000
MAX_POLICY_DEPTH = 20  # a policy is a map of chains of steps: a handful of levels


def policy_path(settings) -> Path:
    """Where an edited policy is saved: the configured file, else one in the data dir."""
    if settings.escalation_policy_file:
        return Path(settings.escalation_policy_file)
    return Path(settings.data_dir) / "policies.yaml"


def current_policy_text(settings) -> str:
    for path in (policy_path(settings), DEFAULT_POLICY_FILE):
        if path.exists():
            return path.read_text()
    return ""


def policy_shape_problem(text: str) -> str | None:
    """What makes a policy's YAML too costly to load, read from the parser's events before anything
    is built: nesting deeper than any policy needs (the loader recurses), or aliases (a few bytes
    of `*name` references can stand for billions of items to validate)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                return "A policy uses no anchors or aliases (&name, *name): write each chain out."
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_POLICY_DEPTH:
                    return f"The policy is nested deeper than {MAX_POLICY_DEPTH} levels."
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return None  # not YAML at all: the loader says where
    except RecursionError:
        return f"The policy is nested deeper than {MAX_POLICY_DEPTH} levels."
    return None


def validate_policy(text: str) -> tuple[PolicySet | None, list[str]]:
    """Parse and validate edited YAML; the errors are written for the person editing it."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        return None, [f"The policy is larger than {MAX_POLICY_BYTES // 1000} kB."]
    problem = policy_shape_problem(text)
    if problem:
        return None, [problem]
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        return None, [f"Not valid YAML: {exc}"]
    try:
        return PolicySet.model_validate(data), []
    except ValidationError as exc:
        return None, [f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors()]


def _page(request: Request, db: Session, user: User, status_code: int = 200, **extra) -> HTMLResponse:
    settings = request.app.state.settings
    users = db.exec(select(User).order_by(User.active.desc(), User.role, User.username)).all()
    context = {"users": users, "roles": list(Role), "sessions": live_session_counts(db), "policy_text": current_policy_text(settings),
               "policy_path": str(policy_path(settings)), "policy_errors": [],
               "policy_in_use": bool(settings.escalation_policy_file),
               "reply_templates": reply_templates(settings.service),
               "connectors": connector_health(request.app.state.ctx), "new_token": None}
    context.update(extra)
    return render(request, "admin.html", user=user, status_code=status_code, **context)


@router.get("/admin")
def admin_page(request: Request, db: DB, user: User = require("admin")) -> HTMLResponse:
    # Staff names, roles and when each was last seen are personal data: the view is on record.
    shown = list(db.exec(select(User.id).order_by(User.id)))
    audit(db, user.username, "view_users", "user", "", {"count": len(shown), "users": shown})
    db.commit()
    return _page(request, db, user)


@router.post("/admin/users", dependencies=[CSRF])
def create_user_form(request: Request, db: DB, user: User = require("admin"), username: str = Form(...),
                     role: str = Form(...), password: str = Form(...), display_name: str = Form("")):
    username = username.strip()
    if role not in set(Role):
        return action_failed(request, "Unknown role.", "/admin", 422)
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        return action_failed(request, "Usernames use letters, digits, dots, dashes and underscores.", "/admin", 422)
    if len(password) < MIN_PASSWORD_CHARS:
        return action_failed(request, f"Passwords need at least {MIN_PASSWORD_CHARS} characters.", "/admin", 422)
    try:
        created, token = create_user(db, username, password, role, display_name.strip())
        audit(db, user.username, "create_user", "user", created.id, {"username": username, "role": role})
        db.commit()
    except IntegrityError:
        db.rollback()
        return action_failed(request, f"The username {username} is taken.", "/admin", 409)
    return _page(request, db, user, new_token={"username": username, "token": token, "role": role})


def _forget_copies(request: Request, user_id: int) -> None:
    """The person's credentials no longer open the degraded queue either (dashboard/degraded.py).
    With Redis unreachable the copies lapse by themselves within sessions.COPY_TTL_S."""
    try:
        request.app.state.session_copies.forget_user(user_id)
    except redis.RedisError:
        log.warning("copies of user %d's credentials not deleted (Redis unreachable); they lapse within %.0f s",
                    user_id, COPY_TTL_S)


@router.post("/admin/users/{user_id}/active", dependencies=[CSRF])
def set_active(request: Request, user_id: RowId, db: DB, user: User = require("admin"), active: str = Form(...)):
    target = db.get(User, user_id)
    if target is None:
        raise HTTPException(404, "user not found")
    if target.id == user.id and active != "1":
        return action_failed(request, "You cannot deactivate your own account.", "/admin", 422)
    target.active = active == "1"
    db.add(target)
    ended = 0 if target.active else revoke_user_sessions(db, target.id, user.username)
    audit(db, user.username, "activate_user" if target.active else "deactivate_user", "user", target.id,
          {"username": target.username, **({} if target.active else {"sessions_ended": ended})})
    db.commit()
    if not target.active:
        _forget_copies(request, target.id)
    return action_done(request, f"{target.username} {'re-activated' if target.active else 'deactivated'}.", "/admin")


@router.post("/admin/users/{user_id}/sign-out", dependencies=[CSRF])
def sign_out_everywhere(request: Request, user_id: RowId, db: DB, user: User = require("admin")):
    """End every browser session of one person (a lost phone, a shared screen, a leaver): each
    copy of their cookie stops working at once. API tokens are reset separately."""
    target = db.get(User, user_id)
    if target is None:
        raise HTTPException(404, "user not found")
    ended = revoke_user_sessions(db, target.id, user.username)
    audit(db, user.username, "sign_out_everywhere", "user", target.id, {"username": target.username, "sessions_ended": ended})
    db.commit()
    _forget_copies(request, target.id)
    return action_done(request, f"{target.username} signed out everywhere ({ended} session{'' if ended == 1 else 's'} ended).",
                       "/admin", sessions_ended=ended)


@router.post("/admin/users/{user_id}/token", dependencies=[CSRF])
def reset_token(request: Request, user_id: RowId, db: DB, user: User = require("admin")):
    target = db.get(User, user_id)
    if target is None:
        raise HTTPException(404, "user not found")
    token = secrets.token_urlsafe(32)
    target.api_token_hash = token_digest(token)
    db.add(target)
    audit(db, user.username, "reset_token", "user", target.id, {"username": target.username})
    db.commit()
    _forget_copies(request, target.id)
    # Shown once, in this response only: it is never stored in a cookie or the database.
    return _page(request, db, user, new_token={"username": target.username, "token": token, "role": target.role})


@router.post("/admin/policies", dependencies=[CSRF])
def save_policies(request: Request, db: DB, user: User = require("admin"), policy: str = Form(...),
                  action: str = Form("validate")):
    parsed, errors = validate_policy(policy)
    if errors:
        return _page(request, db, user, status_code=422, policy_text=policy, policy_errors=errors)
    if action != "save":
        return _page(request, db, user, policy_text=policy,
                     notice={"level": "ok", "text": f"Valid: chains for {', '.join(sorted(parsed.root))}."})
    path = policy_path(request.app.state.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(policy)
    tmp.replace(path)  # atomic: a reader never sees half a policy
    escalate.policies.cache_clear()  # new incidents pick up the saved chains
    audit(db, user.username, "save_policies", "policy", str(path), {"urgencies": sorted(parsed.root)})
    db.commit()
    return action_done(request, f"Escalation policy saved to {path}. Running incidents keep their chain.", "/admin")
