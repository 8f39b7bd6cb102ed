//! `--auth-mode oidc`: JWTs signed by an OpenID provider's keys, found through its discovery
//! document; the role from a claim mapped by `--auth-oidc-roles`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{allow, Authenticator, BoxFuture, Denied, Identity, Need, Role};

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// An unknown `kid` fetches the keys again, at most this often (random `kid`s must not make
/// the server hammer the provider).
pub const JWKS_MIN_REFRESH: Duration = Duration::from_secs(5);
/// Keys are fetched again after this even when every `kid` is known, so that a key the
/// provider withdrew stops being accepted.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// A token whose signature and claims checked out is trusted again without those checks, by
/// its SHA-256, until it expires but for no longer than this: a key the provider withdraws stops
/// being accepted within it (plus [`JWKS_MAX_AGE`]).
pub const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// Verified tokens remembered at most; beyond it expired ones are dropped, and if none were, all.
pub const MAX_VERIFIED: usize = 10_000;
/// Time limit of a request to the provider.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Asymmetric algorithms only: `none` and HMAC (which a public key would be turned into the
/// secret of) are refused before any key is looked at.
const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, Clone, Default)]
pub struct OidcSettings {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// A claim name, or a dotted path into nested claims (`realm_access.roles`).
    pub role_claim: String,
    /// `role=value` pairs; `*` matches every authenticated caller.
    pub roles: RoleMap,
}

/// Roles by claim value (`--auth-oidc-roles`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMap(pub Vec<(Role, String)>);

/// `writer=ml-engineers,reader=*`.
pub fn parse_roles(value: &str) -> Result<RoleMap, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (role, group) = pair.split_once('=').ok_or_else(|| format!("{pair:?}: expected role=value"))?;
            Ok((role.trim().parse::<Role>()?, group.trim().to_owned()))
        })
        .collect::<Result<_, String>>()
        .map(RoleMap)
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// When the keys were last fetched (successfully or not).
    fetched: Option<Instant>,
    /// Why the last fetch failed, if it did: a kid not cached then is unknown for want of an
    /// answer (503), not because the provider does not have it.
    failure: Option<String>,
    jwks_uri: Option<String>,
}

pub struct Oidc {
    issuer: String,
    audience: String,
    role_claim: String,
    roles: Vec<(Role, String)>,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    /// One fetch at a time; others wait for it and use its result.
    refreshing: tokio::sync::Mutex<()>,
    /// Tokens already verified, by SHA-256, with when to stop trusting them. Read by every
    /// request, written once per token and minute: a hit takes a shared lock and copies no text.
    verified: RwLock<HashMap<[u8; 32], (Instant, Identity)>>,
}

impl Oidc {
    pub fn new(settings: &OidcSettings) -> anyhow::Result<Oidc> {
        let issuer = settings
            .issuer
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--auth-mode oidc needs --auth-oidc-issuer (MR_AUTH_OIDC_ISSUER)"))?;
        let audience = settings
            .audience
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--auth-mode oidc needs --auth-oidc-audience (MR_AUTH_OIDC_AUDIENCE)"))?;
        if settings.roles.0.is_empty() {
            anyhow::bail!("--auth-mode oidc needs --auth-oidc-roles (e.g. writer=ml-engineers,reader=*)");
        }
        Ok(Oidc {
            issuer,
            audience,
            role_claim: settings.role_claim.clone(),
            roles: settings.roles.0.clone(),
            http: http_client(settings.ca_file.as_deref(), PROVIDER_TIMEOUT)?,
            keys: RwLock::new(Keys::default()),
            refreshing: tokio::sync::Mutex::new(()),
            verified: RwLock::new(HashMap::new()),
        })
    }

    fn key(&self, kid: &str) -> (Option<DecodingKey>, Option<Instant>) {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        (keys.by_kid.get(kid).cloned(), keys.fetched)
    }

    fn unknown_key(&self, kid: &str) -> Denied {
        match &self.keys.read().unwrap_or_else(|e| e.into_inner()).failure {
            Some(failure) => Denied::Unavailable(failure.clone()),
            None => Denied::Unauthenticated(format!("invalid token: signed with unknown key {kid:?}")),
        }
    }

    /// The key named `kid`, fetching the key set again when it is unknown or old.
    async fn find_key(&self, kid: &str) -> Result<DecodingKey, Denied> {
        let stale = |fetched: Option<Instant>, after: Duration| fetched.is_none_or(|at| at.elapsed() >= after);
        let (key, fetched) = self.key(kid);
        match key {
            Some(key) if !stale(fetched, JWKS_MAX_AGE) => return Ok(key),
            None if !stale(fetched, JWKS_MIN_REFRESH) => return Err(self.unknown_key(kid)),
            _ => {}
        }
        let _one = self.refreshing.lock().await;
        // Someone else may have fetched while this waited.
        let (key, fetched_now) = self.key(kid);
        if fetched_now == fetched {
            match self.refresh().await {
                Ok(()) => {}
                // Keys a provider outage keeps from being refreshed stay in use until it is back.
                Err(e) if key.is_some() => {
                    tracing::warn!(error = %e, "cannot refresh the OpenID provider's keys; keeping the cached ones")
                }
                Err(e) => return Err(e),
            }
        } else if let Some(key) = key {
            return Ok(key);
        }
        self.key(kid).0.ok_or_else(|| self.unknown_key(kid))
    }

    async fn refresh(&self) -> Result<(), Denied> {
        let jwks_uri = self.keys.read().unwrap_or_else(|e| e.into_inner()).jwks_uri.clone();
        let result = async {
            let jwks_uri = match jwks_uri {
                Some(uri) => uri,
                None => {
                    let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
                    let discovery: Discovery = get_json(&self.http, &url).await?;
                    if discovery.issuer != self.issuer {
                        return Err(format!("the discovery document names issuer {:?}, not {:?}", discovery.issuer, self.issuer));
                    }
                    discovery.jwks_uri
                }
            };
            let set: JwkSet = get_json(&self.http, &jwks_uri).await?;
            Ok((jwks_uri, set))
        }
        .await;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.fetched = Some(Instant::now());
        let (jwks_uri, set) = match result {
            Ok(fetched) => fetched,
            Err(e) => {
                let failure = format!("cannot fetch the OpenID provider's keys: {e}");
                keys.failure = Some(failure.clone());
                return Err(Denied::Unavailable(failure));
            }
        };
        keys.failure = None;
        keys.jwks_uri = Some(jwks_uri);
        keys.by_kid =
            set.keys.iter().filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?))).collect();
        tracing::info!(keys = keys.by_kid.len(), "OpenID provider keys fetched");
        Ok(())
    }

    /// Who presents `token`, from the cache of verified tokens or by verifying it.
    async fn identify(&self, token: &str) -> Result<Identity, Denied> {
        let hash = <[u8; 32]>::from(Sha256::digest(token.as_bytes()));
        if let Some((until, identity)) = self.verified.read().unwrap_or_else(|e| e.into_inner()).get(&hash) {
            if Instant::now() < *until {
                return Ok(identity.clone());
            }
        }
        let (identity, exp) = self.verify(token).await?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let left = Duration::from_secs(exp.saturating_sub(now)).min(VERIFIED_TTL);
        let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= MAX_VERIFIED {
            verified.retain(|_, (until, _)| Instant::now() < *until);
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
        }
        verified.insert(hash, (Instant::now() + left, identity.clone()));
        Ok(identity)
    }

    /// Checks the signature and the claims; the identity and the token's `exp`.
    async fn verify(&self, token: &str) -> Result<(Identity, u64), Denied> {
        let invalid = |why: String| Denied::Unauthenticated(format!("invalid token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(e.to_string()))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(invalid(format!("algorithm {:?} is not accepted (asymmetric algorithms only)", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| invalid("no kid in its header".into()))?;
        let key = self.find_key(&kid).await?;
        // The algorithm is the header's, which jsonwebtoken checks against the key's family:
        // an RSA key never verifies an HMAC or an EC signature.
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| invalid(e.to_string()))?
            .claims;
        let subject =
            ["sub", "client_id"].iter().find_map(|c| claims.get(*c).and_then(Value::as_str)).unwrap_or("unknown").into();
        // Required and checked above.
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or_default();
        Ok((Identity { subject, role: self.role_of(&claims) }, exp))
    }

    /// The highest role whose value the role claim holds (a string, space-separated words as in
    /// `scope`, or an array of strings); `*` grants its role to every valid token.
    fn role_of(&self, claims: &serde_json::Map<String, Value>) -> Option<Role> {
        let mut claim = None;
        for (i, part) in self.role_claim.split('.').enumerate() {
            claim = if i == 0 { claims.get(part) } else { claim.and_then(|c: &Value| c.get(part)) };
        }
        let values: Vec<&str> = match claim {
            Some(Value::String(s)) => s.split_whitespace().collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        self.roles.iter().filter(|(_, group)| group == "*" || values.contains(&group.as_str())).map(|(role, _)| *role).max()
    }
}

/// A client trusting the system's roots and, when given, one more CA.
pub(super) fn http_client(ca_file: Option<&std::path::Path>, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read the CA file {} ({e})", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T, String> {
    let response = http.get(url).send().await.map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()));
    }
    response.json().await.map_err(|e| format!("{url}: {e}"))
}

impl Authenticator for Oidc {
    fn check<'a>(&'a self, token: &'a str, need: Need<'a>) -> BoxFuture<'a, Result<Identity, Denied>> {
        Box::pin(async move { allow(self.identify(token).await?, need) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_the_claim_by_its_values() {
        let roles = parse_roles("writer=ml-engineers, admin=ops, reader=*").unwrap();
        let oidc = Oidc::new(&OidcSettings {
            issuer: Some("https://id.example".into()),
            audience: Some("registry".into()),
            role_claim: "groups".into(),
            roles,
            ..OidcSettings::default()
        })
        .unwrap();
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(oidc.role_of(&claims(serde_json::json!({"groups": ["ml-engineers", "x"]}))), Some(Role::Writer));
        assert_eq!(oidc.role_of(&claims(serde_json::json!({"groups": "ops"}))), Some(Role::Admin));
        assert_eq!(oidc.role_of(&claims(serde_json::json!({}))), Some(Role::Reader));
        assert!(parse_roles("writer").is_err());
        assert!(parse_roles("owner=x").is_err());
    }
}
