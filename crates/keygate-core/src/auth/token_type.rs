//! The kinds of token Clerk issues, as its backend SDK's `acceptsToken` names them, and
//! the sets of them a route accepts.

use std::fmt;
use std::str::FromStr;

/// What kind of token authenticated a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// A Clerk session token (or any JWT of the configured issuers): a signed-in user.
    SessionToken,
    /// A Clerk machine-to-machine token: a `mch_…` machine.
    M2mToken,
    /// An OAuth access token (`typ` `at+jwt`, or an opaque `oat_…`).
    OauthToken,
    /// A Clerk API key (`ak_…`).
    ApiKey,
}

impl TokenType {
    /// Every type, in the order of the contract.
    pub const ALL: [TokenType; 4] = [
        TokenType::SessionToken,
        TokenType::M2mToken,
        TokenType::OauthToken,
        TokenType::ApiKey,
    ];

    /// The name used by `JWT_ACCEPT_TOKENS`, rules files and `/me`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::SessionToken => "session_token",
            TokenType::M2mToken => "m2m_token",
            TokenType::OauthToken => "oauth_token",
            TokenType::ApiKey => "api_key",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a token type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token type {0:?} (expected session_token, m2m_token, oauth_token or api_key)")]
pub struct UnknownTokenType(pub String);

impl FromStr for TokenType {
    type Err = UnknownTokenType;

    fn from_str(s: &str) -> Result<TokenType, UnknownTokenType> {
        TokenType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownTokenType(s.to_string()))
    }
}

/// A set of token types a route accepts.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenTypes(u8);

impl TokenTypes {
    /// Session tokens only: the default, as in Clerk's SDK.
    pub const SESSION: TokenTypes = TokenTypes(1);

    /// The set of `types`.
    pub fn of(types: impl IntoIterator<Item = TokenType>) -> TokenTypes {
        TokenTypes(types.into_iter().fold(0, |bits, t| bits | t.bit()))
    }

    /// Whether `token_type` is in the set.
    pub fn contains(self, token_type: TokenType) -> bool {
        self.0 & token_type.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The types in the set.
    pub fn iter(self) -> impl Iterator<Item = TokenType> {
        TokenType::ALL
            .into_iter()
            .filter(move |t| self.contains(*t))
    }
}

impl Default for TokenTypes {
    fn default() -> Self {
        TokenTypes::SESSION
    }
}

impl fmt::Debug for TokenTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(TokenType::as_str))
            .finish()
    }
}

impl FromIterator<TokenType> for TokenTypes {
    fn from_iter<I: IntoIterator<Item = TokenType>>(iter: I) -> Self {
        TokenTypes::of(iter)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_hold_what_was_put_in() {
        for t in TokenType::ALL {
            assert_eq!(t.as_str().parse::<TokenType>().unwrap(), t);
        }
        assert!("jwt".parse::<TokenType>().is_err());
        let set = TokenTypes::of([TokenType::M2mToken, TokenType::ApiKey]);
        assert!(set.contains(TokenType::ApiKey) && !set.contains(TokenType::SessionToken));
        assert_eq!(set.iter().count(), 2);
        assert!(TokenTypes::default().contains(TokenType::SessionToken));
    }
}
