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
    /// A required field is missing.
    #[error("{0}")]
    Unprocessable(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("Datastore service is down or unavailable: {0}")]
    Unavailable(String),
    /// The request outlived the per-request deadline.
    #[error("the request took longer than {0:?}; try again later")]
    DeadlineExceeded(std::time::Duration),
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
            embedmd::Error::Unavailable(e) => Error::Unavailable(e.to_string()),
            other => Error::Internal(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
