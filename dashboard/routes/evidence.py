"""Evidence routes: a supervisor's export of an incident's evidence bundle, and the redacted view
of a post for sharing beyond the people who need the original. Both are audited."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from sqlmodel import select
from starlette.background import BackgroundTask

from dashboard.deps import API_ERRORS, CSRF, DB, Ctx, RowId, require
from models.access import audit
from evidence.bundle import ExportError, export_incident
from evidence.media import default_media_root
from evidence.redaction import redacted_post
from models.tables import Post, TriageRecord, User

router = APIRouter()


@router.post("/incidents/{incident_id}/evidence-export", dependencies=[CSRF])
def evidence_export(incident_id: RowId, ctx: Ctx, db: DB, user: User = require("export")) -> FileResponse:
    """Build the bundle in a private temp dir and stream it; the dir goes once the response is sent."""
    workdir = Path(tempfile.mkdtemp(prefix="flare-evidence-"))
    out = workdir / f"flare-incident-{incident_id}-evidence.zip"
    try:
        result = export_incident(ctx.engine, incident_id, out, default_media_root(ctx.settings), ctx.evidence_keys,
                                 actor=user.username)
    except ExportError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise HTTPException(404, str(exc)) from exc
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    audit(db, user.username, "evidence_export", "incident", incident_id,
          {"manifest_sha256": result.manifest_sha256, "files": result.files, "chain_head": result.chain_head})
    db.commit()
    return FileResponse(out, media_type="application/zip", filename=out.name,
                        headers={"X-Manifest-Sha256": result.manifest_sha256},
                        background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True))


@router.get("/api/v1/posts/{post_id}/redacted", tags=["api"], responses=API_ERRORS)
def redacted_post_view(post_id: RowId, db: DB, user: User = require("view_incident")) -> dict:
    post = db.get(Post, post_id)
    if post is None:
        raise HTTPException(404, "post not found")
    triage = db.exec(select(TriageRecord).where(TriageRecord.post_id == post_id)).first()
    view = redacted_post(post, triage)
    audit(db, user.username, "view_post_redacted", "post", post_id)
    db.commit()
    return view
