//! Why admission refused a change, as the core says it. The HTTP layer
//! gives each kind its status code in one place (`error.rs`); callers that
//! report in text (the scaffolder's task log, `heimdall up`, an apply that
//! continues on error) use [`Rejection::public_message`] and
//! [`Rejection::details`], which never describe the hub's own failures.

use heimdall_api::ErrorDetail;
use heimdall_model::{DocumentError, Problem};
use heimdall_store::StoreError;

use crate::auth::Denied;

#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("the request holds no documents")]
    NoDocuments,
    /// Documents that do not decode, render or compile, problem by problem.
    #[error("{}", invalid_message(.0.len()))]
    Invalid(Vec<DocumentError>),
    /// One field of the request, e.g. the workflow step to approve.
    #[error("{}{}", .document.as_ref().map(|d| format!("{d}: ")).unwrap_or_default(), Problem::new(path, message.clone()))]
    InvalidField { document: Option<String>, path: String, message: String },
    /// Policies that deny: one line per finding.
    #[error("{} policy violation{}; nothing was changed", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    PolicyViolation(Vec<ErrorDetail>),
    /// A tenant's claims would cost more than its budget: one line per claim.
    #[error("{message}")]
    BudgetExceeded { message: String, lines: Vec<ErrorDetail> },
    #[error("tenant {tenant} still has applications ({}); delete them first", .applications.join(", "))]
    TenantHasApplications { tenant: String, applications: Vec<String> },
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Storing the batch failed at one of its documents; nothing was stored.
    #[error("{document}: {source}; nothing was changed")]
    Write { document: String, source: StoreError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::auth::AuthorizeError> for Rejection {
    fn from(err: crate::auth::AuthorizeError) -> Self {
        match err {
            crate::auth::AuthorizeError::Denied(denied) => Rejection::Denied(denied),
            crate::auth::AuthorizeError::Store(e) => Rejection::Store(e),
        }
    }
}

fn invalid_message(count: usize) -> String {
    format!("{count} document{} invalid; nothing was changed", if count == 1 { " is" } else { "s are" })
}

impl Rejection {
    pub fn invalid_field(path: &str, message: impl Into<String>) -> Self {
        Rejection::InvalidField { document: None, path: path.to_string(), message: message.into() }
    }

    /// Names the document the refused field is in.
    pub fn in_document(self, document: &str) -> Self {
        match self {
            Rejection::InvalidField { path, message, .. } => {
                Rejection::InvalidField { document: Some(document.to_string()), path, message }
            }
            Rejection::Denied(denied) => Rejection::Denied(denied.in_document(document)),
            other => other,
        }
    }

    /// The store failure behind this refusal, when it is the hub's own.
    pub fn internal_failure(&self) -> Option<&StoreError> {
        match self {
            Rejection::Write { source, .. } | Rejection::Store(source) if source.is_internal() => Some(source),
            _ => None,
        }
    }

    /// What the person who sent the change is told: the hub's own failures
    /// are not described (the log has them).
    pub fn public_message(&self) -> String {
        match self {
            Rejection::Write { document, source } if source.is_internal() => {
                format!("{document}: {INTERNAL}; nothing was changed")
            }
            Rejection::Store(source) if source.is_internal() => INTERNAL.to_string(),
            other => other.to_string(),
        }
    }

    /// The refusal field by field; empty when its message says it all.
    pub fn details(&self) -> Vec<ErrorDetail> {
        match self {
            Rejection::Invalid(errors) => errors
                .iter()
                .flat_map(|e| {
                    e.problems.iter().map(|p| ErrorDetail {
                        document: Some(e.document.clone()),
                        path: p.path.clone(),
                        message: p.message.clone(),
                    })
                })
                .collect(),
            Rejection::InvalidField { path, message, .. } => {
                vec![ErrorDetail { document: None, path: path.clone(), message: message.clone() }]
            }
            Rejection::PolicyViolation(lines) | Rejection::BudgetExceeded { lines, .. } => lines.clone(),
            _ => Vec::new(),
        }
    }

    /// The public message and every detail in one line, for a log people
    /// read (the same line the portal shows for an API error).
    pub fn describe(&self) -> String {
        heimdall_api::error::one_line(&self.public_message(), &self.details())
    }

    /// [`Rejection::describe`] for someone who is not the hub's log (a task's
    /// log, a start-up error), having logged the hub's own failure it hides.
    pub fn report(&self) -> String {
        if let Some(failure) = self.internal_failure() {
            tracing::error!(error = %failure, "store failure");
        }
        self.describe()
    }
}

const INTERNAL: &str = "internal error; the hub's log has the details";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hubs_own_failures_are_not_described() {
        let failure = Rejection::Write { document: "app.yaml".into(), source: StoreError::Corrupt("row 7 of secrets: bad base64".into()) };
        assert_eq!(failure.public_message(), "app.yaml: internal error; the hub's log has the details; nothing was changed");
        assert!(failure.internal_failure().is_some());
        let refused = Rejection::Write {
            document: "app.yaml".into(),
            source: StoreError::AlreadyExists { key: heimdall_model::ResourceKey::new("Application", "shop", "web") },
        };
        assert!(refused.public_message().contains("already exists"), "{}", refused.public_message());
        assert!(refused.internal_failure().is_none());
    }

    #[test]
    fn a_field_refusal_names_its_document_and_path() {
        let refusal = Rejection::invalid_field("metadata.name", "no claim named db").in_document("migration.yaml");
        assert_eq!(refusal.to_string(), "migration.yaml: metadata.name: no claim named db");
        assert_eq!(refusal.describe(), "migration.yaml: metadata.name: no claim named db; metadata.name: no claim named db");
        let invalid = Rejection::Invalid(vec![DocumentError::new("app.yaml", vec![Problem::new("spec.components[0].type", "unknown")])]);
        assert_eq!(invalid.describe(), "1 document is invalid; nothing was changed; app.yaml: spec.components[0].type: unknown");
    }
}
