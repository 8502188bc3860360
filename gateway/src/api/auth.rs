//! Janus API authentication: `api_secret` (a shared secret in every request's `apisecret`) and
//! tokens (`token_auth`): stored tokens, kept in the `Store` so that one added on any gateway
//! works on all at once, or tokens signed with `token_auth_secret` (no storage). A request is
//! authorized when either its secret or its token is valid, as in Janus
//! (`janus_request_check_secret`); a token also names the plugins its holder may attach to.

use super::error::GatewayError;
use shared::config::Config;
use shared::janus::request::Credentials;
use shared::janus::signed_token;
use shared::secret::same;
use shared::store::Store;

/// How tokens are checked.
#[derive(Clone, Debug)]
pub enum TokenMode {
    Off,
    /// Tokens added over the Admin API (`add_token`), each with its allowed plugins.
    Stored,
    /// Tokens signed with this secret (`token_auth_secret`).
    Signed(String),
}

/// Whose credentials authorized a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// Authentication is off.
    Anyone,
    /// The API secret (shared by everyone who has it).
    Secret,
    /// A token: its holder.
    Token(String),
}

impl Principal {
    /// What a session keeps of its creator, so that only the same credentials claim it: the
    /// token's SHA-1, never the token itself (the Store is not a token vault).
    pub fn fingerprint(&self) -> String {
        use sha1::Digest;
        match self {
            Principal::Anyone => String::new(),
            Principal::Secret => "secret".to_owned(),
            Principal::Token(t) => {
                let digest = sha1::Sha1::digest(t.as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("token:{hex}")
            }
        }
    }
}

/// The deployment's authentication settings.
#[derive(Clone, Debug)]
pub struct Auth {
    api_secret: Option<String>,
    pub tokens: TokenMode,
}

impl Auth {
    pub fn new(cfg: &Config) -> Self {
        let tokens = match (cfg.token_auth, &cfg.token_auth_secret) {
            (false, _) => TokenMode::Off,
            (true, None) => TokenMode::Stored,
            (true, Some(secret)) => TokenMode::Signed(secret.clone()),
        };
        Self { api_secret: cfg.api_secret.clone(), tokens }
    }

    /// Whether requests need credentials (`server_info`'s `api_secret`).
    pub fn api_secret(&self) -> bool {
        self.api_secret.is_some()
    }

    /// Whether tokens are on (`server_info`'s `auth_token`).
    pub fn token_auth(&self) -> bool {
        !matches!(self.tokens, TokenMode::Off)
    }

    /// Checks a request's credentials: 403 unless the secret or the token is valid (checked
    /// in that order, as Janus does); says which one was.
    pub async fn check(&self, store: &dyn Store, creds: &Credentials) -> Result<Principal, GatewayError> {
        if self.api_secret.is_none() && !self.token_auth() {
            return Ok(Principal::Anyone);
        }
        if let (Some(want), Some(given)) = (&self.api_secret, &creds.apisecret) {
            if same(want, given) {
                return Ok(Principal::Secret);
            }
        }
        if let Some(token) = &creds.token {
            if self.token_valid(store, token).await? {
                return Ok(Principal::Token(token.clone()));
            }
        }
        Err(GatewayError::Unauthorized)
    }

    async fn token_valid(&self, store: &dyn Store, token: &str) -> Result<bool, GatewayError> {
        Ok(match &self.tokens {
            TokenMode::Off => false,
            TokenMode::Stored => store.token(token).await?.is_some(),
            TokenMode::Signed(secret) => {
                signed_token::valid(token, secret.as_bytes(), signed_token::JANUS_REALM, now_unix())
            }
        })
    }

    /// `attach` with a token: 405 unless the token may use `plugin` (Janus checks a given token
    /// whatever authorized the request).
    pub async fn check_plugin(&self, store: &dyn Store, token: Option<&str>, plugin: &str) -> Result<(), GatewayError> {
        let Some(token) = token else { return Ok(()) };
        let allowed = match &self.tokens {
            TokenMode::Off => true,
            TokenMode::Stored => store.token(token).await?.is_some_and(|plugins| plugins.iter().any(|p| p == plugin)),
            TokenMode::Signed(secret) => {
                signed_token::valid_for(token, secret.as_bytes(), signed_token::JANUS_REALM, plugin, now_unix())
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(GatewayError::UnauthorizedPlugin(plugin.to_owned()))
        }
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
