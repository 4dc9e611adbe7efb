"""The tutorial's FastAPI backend, behind keygate.

The tutorial verified Clerk's session token in Python on every route (PyJWT, the JWKS,
the issuer and azp checks). Behind keygate all of that is gone: keygate verifies the
token before the request gets here, removes any X-Auth-* header a client sent, and
tells this app who the caller is in X-Auth-User-Id. Trust those headers only when the
app can be reached through keygate alone (bind it to 127.0.0.1 or a private network).

Or trust nothing you cannot verify: with GATEWAY_IDENTITY_TOKEN=true keygate also
sends X-Auth-Identity, a JWT it signs, and with KEYGATE_REQUIRE_IDENTITY=true this app
reads the caller from it alone, verified with the tutorial's own PyJWT code pointed at
keygate's JWKS. A request without a valid identity is refused, wherever it came from.

Run it behind keygate's reverse proxy:

    uvicorn main:app --host 127.0.0.1 --port 8000
    UPSTREAM_URL=http://127.0.0.1:8000 CLERK_PUBLISHABLE_KEY=pk_... keygate

With the signed identity (the audience is keygate's UPSTREAM_URL unless
GATEWAY_IDENTITY_AUDIENCE says otherwise):

    KEYGATE_REQUIRE_IDENTITY=true \\
    KEYGATE_JWKS_URL=http://127.0.0.1:8080/_keygate/.well-known/jwks.json \\
    KEYGATE_AUDIENCE=http://127.0.0.1:8000 uvicorn main:app --port 8000
    GATEWAY_IDENTITY_TOKEN=true UPSTREAM_URL=http://127.0.0.1:8000 ... keygate
"""

import os
from typing import Annotated, Optional

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException

app = FastAPI(title="keygate FastAPI example")

REQUIRE_IDENTITY = os.environ.get("KEYGATE_REQUIRE_IDENTITY", "").lower() == "true"
JWKS_URL = os.environ.get(
    "KEYGATE_JWKS_URL", "http://127.0.0.1:8080/_keygate/.well-known/jwks.json"
)
AUDIENCE = os.environ.get("KEYGATE_AUDIENCE", "http://127.0.0.1:8000")
ISSUER = os.environ.get("KEYGATE_ISSUER", "keygate")

# Keys are fetched on first use and kept (keygate serves them with max-age=300); an
# identity signed with a key not yet seen makes the client fetch the JWKS again.
jwks_client = jwt.PyJWKClient(JWKS_URL, cache_keys=True, lifespan=300)


def verified_identity(token: str) -> dict:
    """The tutorial's verification, pointed at keygate: signature by the key the
    header names, then issuer, audience and expiry."""
    try:
        signing_key = jwks_client.get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            signing_key.key,
            algorithms=["ES256", "EdDSA"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as e:
        raise HTTPException(status_code=401, detail="Invalid identity") from e


def caller(
    x_auth_identity: Annotated[Optional[str], Header()] = None,
    x_auth_user_id: Annotated[Optional[str], Header()] = None,
    x_auth_session_id: Annotated[Optional[str], Header()] = None,
    x_auth_org_id: Annotated[Optional[str], Header()] = None,
    x_auth_org_role: Annotated[Optional[str], Header()] = None,
) -> dict:
    """Who is calling: from the signed identity when it is required, else from the
    headers keygate set (trusted because only keygate can reach this app)."""
    if REQUIRE_IDENTITY:
        if not x_auth_identity:
            raise HTTPException(status_code=401, detail="Not authenticated")
        claims = verified_identity(x_auth_identity)
        org = claims.get("org") or {}
        return {
            "user_id": claims["sub"],
            "session_id": claims.get("sid"),
            "org_id": org.get("id"),
            "org_role": org.get("role"),
        }
    # keygate's rules decide who gets here; this only guards against a misconfigured
    # deployment that lets a request reach the app without going through keygate.
    if not x_auth_user_id:
        raise HTTPException(status_code=401, detail="Not authenticated")
    return {
        "user_id": x_auth_user_id,
        "session_id": x_auth_session_id,
        "org_id": x_auth_org_id,
        "org_role": x_auth_org_role,
    }


@app.get("/protected")
def protected(user: Annotated[dict, Depends(caller)]):
    return {"message": f"Hello, user {user['user_id']}"}


@app.get("/api/me")
def me(user: Annotated[dict, Depends(caller)]):
    return user


@app.get("/public/health")
def health():
    return {"status": "ok"}
