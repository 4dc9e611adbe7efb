//! The Actix extractor: `AuthUser` as a handler argument.
//!
//! It reads the [`Authenticator`] registered with `.app_data(..)` (or as
//! `web::Data<Authenticator>`); the result is kept in the request's extensions so a
//! guard middleware and the handler never verify the same request twice.

use std::future::{Future, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::{AuthError, AuthUser};
use crate::Authenticator;

impl FromRequest for AuthUser {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<AuthUser, AuthError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(user) = req.extensions().get::<AuthUser>() {
            return Box::pin(ready(Ok(user.clone())));
        }
        let Some(authenticator) = registered(req) else {
            tracing::error!(
                "AuthUser needs an Authenticator: add `.app_data(authenticator.clone())` to the App (or the scope)"
            );
            return Box::pin(ready(Err(AuthError::NotRegistered)));
        };
        let req = req.clone();
        Box::pin(async move {
            let user = authenticator.authenticate(&req).await?;
            req.extensions_mut().insert(user.clone());
            Ok(user)
        })
    }
}

/// The authenticator of the request's app or scope, registered either way.
pub(crate) fn registered(req: &HttpRequest) -> Option<Authenticator> {
    req.app_data::<Authenticator>()
        .or_else(|| {
            req.app_data::<web::Data<Authenticator>>()
                .map(|d| d.get_ref())
        })
        .cloned()
}
