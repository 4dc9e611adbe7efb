"""The tutorial's FastAPI backend, behind keygate.

The tutorial verified Clerk's session token in Python on every route (PyJWT, the JWKS,
the issuer and azp checks). Behind keygate all of that is gone: keygate verifies the
token before the request gets here, removes any X-Auth-* header a client sent, and
tells this app who the caller is in X-Auth-User-Id. The app must only be reachable
through keygate (bind it to 127.0.0.1 or a private network).

Run it behind keygate's reverse proxy:

    uvicorn main:app --host 127.0.0.1 --port 8000
    UPSTREAM_URL=http://127.0.0.1:8000 CLERK_PUBLISHABLE_KEY=pk_... keygate
"""

from typing import Annotated, Optional

from fastapi import FastAPI, Header, HTTPException

app = FastAPI(title="keygate FastAPI example")


def current_user(x_auth_user_id: Optional[str]) -> str:
    # keygate's rules decide who gets here; this only guards against a misconfigured
    # deployment that lets a request reach the app without going through keygate.
    if not x_auth_user_id:
        raise HTTPException(status_code=401, detail="Not authenticated")
    return x_auth_user_id


@app.get("/protected")
def protected(x_auth_user_id: Annotated[Optional[str], Header()] = None):
    return {"message": f"Hello, user {current_user(x_auth_user_id)}"}


@app.get("/api/me")
def me(
    x_auth_user_id: Annotated[Optional[str], Header()] = None,
    x_auth_session_id: Annotated[Optional[str], Header()] = None,
    x_auth_org_id: Annotated[Optional[str], Header()] = None,
    x_auth_org_role: Annotated[Optional[str], Header()] = None,
):
    return {
        "user_id": current_user(x_auth_user_id),
        "session_id": x_auth_session_id,
        "org_id": x_auth_org_id,
        "org_role": x_auth_org_role,
    }


@app.get("/public/health")
def health():
    return {"status": "ok"}
