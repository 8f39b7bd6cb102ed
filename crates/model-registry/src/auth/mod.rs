//! Who is asking and what they may do. Every edge (Kubeflow REST, MLflow REST, the UI) names the
//! role each of its operations needs in its own operation table; nothing else lists paths.

/// What an operation needs of its caller. Ordered: each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads and searches.
    Reader,
    /// Reader, plus creates, updates and logging.
    Writer,
    /// Writer, plus deletes.
    Admin,
}
