/// Every outcome of a registry call that is not a success. `http::error` maps each variant to
/// its status, in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Something still points at what a delete would remove (an inference service serving a
    /// model version).
    #[error("{0}")]
    InUse(String),
    /// A required field is missing.
    #[error("{0}")]
    Unprocessable(String),
    #[error("request body too large")]
    PayloadTooLarge,
    /// A write without a JSON content type: the kinds a browser sends cross-site without a
    /// CORS preflight (text/plain, forms) must not create anything.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// More requests in flight than the server admits.
    #[error("too many concurrent requests: retry later")]
    Overloaded,
    #[error("Datastore service is down or unavailable: {0}")]
    Unavailable(String),
    /// The request outlived the per-request deadline.
    #[error("the request took longer than {0:?}; try again later")]
    DeadlineExceeded(std::time::Duration),
    /// A write that lost to concurrent ones on every attempt (deadlocks, Galera certification
    /// conflicts, an id the database handed out twice): nothing was written, a retry may pass.
    #[error("the write met concurrent ones on each of its attempts; try again")]
    Contended(#[source] embedmd::Error),
    #[error("internal error")]
    Internal(#[source] embedmd::Error),
}

impl Error {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::BadRequest(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::NotFound(message.into())
    }
}

impl From<embedmd::Error> for Error {
    fn from(e: embedmd::Error) -> Self {
        match e {
            embedmd::Error::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Error::Unavailable(public_reason(&e))
            }
            e if e.is_retryable() => {
                tracing::warn!(error = %e, "a write lost to concurrent ones on every attempt");
                Error::Contended(e)
            }
            other => Error::Internal(other),
        }
    }
}

/// What a client may be told about a datastore failure: its category and, where the operator
/// has something to do, what; never the driver's text (user, host and file names), which the
/// caller logs.
pub fn public_reason(e: &embedmd::Error) -> String {
    use embedmd::MigrateError as M;
    match e {
        embedmd::Error::Unavailable(_) | embedmd::Error::Migrate(M::Connect(_)) => "database unreachable".into(),
        // Texts of our own, with the versions involved and the fix.
        embedmd::Error::Migrate(
            m @ (M::Dirty { .. } | M::UnknownVersion { .. } | M::MlmdVersion { .. } | M::MlmdEnvRows(_) | M::NoSuchVersion(_)),
        ) => m.to_string(),
        embedmd::Error::Migrate(M::StepFailed { version, .. }) => {
            format!("migration {version} failed and left the database dirty at version {version}: see the server log")
        }
        _ => "database error: see the server log".into(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
