//! IAM-style identity policies: parsing and evaluation.
//!
//! A document is IAM's JSON (`Version`, `Statement` — one object or a list —
//! each with `Sid`, `Effect` `Allow`|`Deny`, `Action` and `Resource` as one
//! string or a list, with `*` and `?` wildcards). Evaluation is IAM's for
//! identity policies: an explicit `Deny` that matches wins, else an `Allow`
//! that matches allows, else the request is denied (default deny). Actions
//! match case-insensitively, resources case-sensitively. Elements PromLake
//! does not evaluate (`NotAction`, `NotResource`, `Condition`, `Principal`)
//! are refused when a policy is stored, never silently ignored.

use serde_json::Value;

/// Most statements one document may hold.
const MAX_STATEMENTS: usize = 100;
/// Largest document, bytes of JSON (IAM's managed-policy size).
pub const MAX_POLICY_BYTES: usize = 6144;

/// Why a document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MalformedPolicyDocument: {0}")]
pub struct PolicyError(pub String);

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants what the statement matches.
    Allow,
    /// Refuses what the statement matches, whatever else allows it.
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// The outcome of evaluating policies for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An `Allow` matched and no `Deny` did.
    Allow,
    /// A `Deny` matched.
    ExplicitDeny,
    /// Nothing matched.
    ImplicitDeny,
}

impl Policy {
    /// Parses and checks a document.
    ///
    /// # Errors
    /// [`PolicyError`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError(format!("a policy document may be at most {MAX_POLICY_BYTES} bytes")));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| PolicyError(format!("not JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// Checks a document already parsed as JSON.
    ///
    /// # Errors
    /// [`PolicyError`] naming what is wrong.
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let doc = value.as_object().ok_or_else(|| PolicyError("a policy document is a JSON object".into()))?;
        for key in doc.keys() {
            if !matches!(key.as_str(), "Version" | "Statement" | "Id") {
                return Err(PolicyError(format!("unknown element {key:?}")));
            }
        }
        match doc.get("Version").map(|v| v.as_str()) {
            None | Some(Some("2012-10-17" | "2008-10-17")) => {}
            Some(v) => return Err(PolicyError(format!("Version must be \"2012-10-17\", not {v:?}"))),
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err(PolicyError("Statement is missing: an object or a list of objects".into())),
        };
        if statements.is_empty() || statements.len() > MAX_STATEMENTS {
            return Err(PolicyError(format!("a policy has 1 to {MAX_STATEMENTS} statements")));
        }
        let statements = statements.into_iter().map(statement).collect::<Result<_, _>>()?;
        Ok(Self { statements })
    }

    /// This policy's say on `action` over `resource`.
    pub fn decide(&self, action: &str, resource: &str) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            let action_matches =
                s.actions.iter().any(|p| wildcard_match(&p.to_ascii_lowercase(), &action.to_ascii_lowercase()));
            if !action_matches || !s.resources.iter().any(|p| wildcard_match(p, resource)) {
                continue;
            }
            match s.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
        if allowed { Decision::Allow } else { Decision::ImplicitDeny }
    }
}

/// IAM's evaluation over every policy of a principal.
pub fn evaluate(policies: &[Policy], action: &str, resource: &str) -> Decision {
    let mut allowed = false;
    for p in policies {
        match p.decide(action, resource) {
            Decision::ExplicitDeny => return Decision::ExplicitDeny,
            Decision::Allow => allowed = true,
            Decision::ImplicitDeny => {}
        }
    }
    if allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

fn statement(value: &Value) -> Result<Statement, PolicyError> {
    let s = value.as_object().ok_or_else(|| PolicyError("each statement is a JSON object".into()))?;
    for key in s.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Action" | "Resource" => {}
            "NotAction" | "NotResource" | "Condition" | "Principal" | "NotPrincipal" => {
                return Err(PolicyError(format!("{key} is not supported by PromLake's identity policies")));
            }
            other => return Err(PolicyError(format!("unknown statement element {other:?}"))),
        }
    }
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        other => return Err(PolicyError(format!("Effect must be \"Allow\" or \"Deny\", not {other:?}"))),
    };
    let actions = strings(s.get("Action"), "Action")?;
    for a in &actions {
        let ok = a == "*"
            || a.split_once(':').is_some_and(|(service, name)| {
                !service.is_empty()
                    && service.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
            });
        if !ok {
            return Err(PolicyError(format!("invalid action {a:?}: \"*\" or \"service:Action\" (wildcards * and ?)")));
        }
    }
    let resources = strings(s.get("Resource"), "Resource")?;
    for r in &resources {
        if r != "*" && !r.starts_with("arn:") {
            return Err(PolicyError(format!("invalid resource {r:?}: \"*\" or an ARN (wildcards * and ?)")));
        }
    }
    Ok(Statement { effect, actions, resources })
}

fn strings(value: Option<&Value>, name: &str) -> Result<Vec<String>, PolicyError> {
    let list = match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| PolicyError(format!("{name} items are strings"))))
            .collect::<Result<_, _>>()?,
        _ => return Err(PolicyError(format!("{name} is required: a string or a non-empty list of strings"))),
    };
    Ok(list)
}

/// IAM's wildcard match: `*` any run of characters (also none), `?` one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        // A `*` in the pattern is a wildcard even where the text has a `*`
        // (resources such as `…:workspace/*` do).
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The built-in policies a principal may name instead of a document:
/// AWS's managed policies for AMP, and full administrator access.
pub fn builtin(name: &str) -> Option<Policy> {
    let doc = match name {
        "AdministratorAccess" => {
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#
        }
        "AmazonPrometheusFullAccess" => {
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"aps:*","Resource":"*"}}"#
        }
        "AmazonPrometheusRemoteWriteAccess" => {
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"aps:RemoteWrite","Resource":"*"}}"#
        }
        "AmazonPrometheusQueryAccess" => {
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["aps:GetLabels","aps:GetMetricMetadata","aps:GetSeries","aps:QueryMetrics"],"Resource":"*"}}"#
        }
        _ => return None,
    };
    Policy::parse(doc).ok()
}

/// The names of [`builtin`] policies.
pub const BUILTIN_POLICIES: [&str; 4] = [
    "AdministratorAccess",
    "AmazonPrometheusFullAccess",
    "AmazonPrometheusRemoteWriteAccess",
    "AmazonPrometheusQueryAccess",
];

#[cfg(test)]
mod tests {
    use super::*;

    const WS_A: &str = "arn:aws:aps:us-east-1:123456789012:workspace/ws-a";
    const WS_B: &str = "arn:aws:aps:us-east-1:123456789012:workspace/ws-b";

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard_match("aps:*", "aps:QueryMetrics"));
        assert!(wildcard_match("aps:get*", "aps:getlabels"));
        assert!(!wildcard_match("aps:get*", "aps:queryMetrics"));
        assert!(wildcard_match("arn:aws:aps:*:*:workspace/ws-?", "arn:aws:aps:us-east-1:1:workspace/ws-a"));
        assert!(!wildcard_match("arn:aws:aps:*:*:workspace/ws-?", "arn:aws:aps:us-east-1:1:workspace/ws-ab"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXbYbZc"));
        assert!(!wildcard_match("a*b*c", "aXbYbZ"));
        assert!(wildcard_match("**", "x"));
        // Found by the fuzz target: a `*` in the text under a `*` of the pattern.
        assert!(wildcard_match("*", "*apss"));
        assert!(wildcard_match("a*", "a*b"));
        assert!(wildcard_match("arn:aws:aps:*:*:workspace/*", "arn:aws:aps:us-east-1:1:workspace/*"));
    }

    #[test]
    fn explicit_deny_wins_and_the_default_is_deny() {
        let allow_all = builtin("AmazonPrometheusFullAccess").unwrap();
        let deny_b = Policy::parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"x","Effect":"Deny","Action":["aps:Get*","aps:QueryMetrics"],"Resource":"{WS_B}"}}]}}"#
        ))
        .unwrap();
        let policies = [allow_all, deny_b];
        assert_eq!(evaluate(&policies, "aps:QueryMetrics", WS_A), Decision::Allow);
        assert_eq!(evaluate(&policies, "aps:QueryMetrics", WS_B), Decision::ExplicitDeny);
        assert_eq!(evaluate(&policies, "aps:GETLABELS", WS_B), Decision::ExplicitDeny, "actions ignore case");
        assert_eq!(evaluate(&policies, "aps:RemoteWrite", WS_B), Decision::Allow);
        assert_eq!(evaluate(&[], "aps:RemoteWrite", WS_A), Decision::ImplicitDeny);
        let write = builtin("AmazonPrometheusRemoteWriteAccess").unwrap();
        assert_eq!(evaluate(std::slice::from_ref(&write), "aps:QueryMetrics", WS_A), Decision::ImplicitDeny);
        assert_eq!(evaluate(&[write], "aps:RemoteWrite", WS_A), Decision::Allow);
        let query = builtin("AmazonPrometheusQueryAccess").unwrap();
        assert_eq!(evaluate(std::slice::from_ref(&query), "aps:GetSeries", WS_A), Decision::Allow);
        assert_eq!(evaluate(&[query], "aps:CreateWorkspace", WS_A), Decision::ImplicitDeny);
        for name in BUILTIN_POLICIES {
            assert!(builtin(name).is_some(), "{name}");
        }
    }

    #[test]
    fn documents_prompt_clear_errors() {
        for bad in [
            "",
            "[]",
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Version":"2011-01-01","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"allow","Action":"*","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"aps","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"workspace/*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}}"#,
            r#"{"Statement":{"Effect":"Allow","NotAction":"aps:*","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Extra":1}}"#,
            r#"{"Statement":[],"Version":"2012-10-17"}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"},"Bogus":1}"#,
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad} was accepted");
        }
        let big = format!(r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"arn:{}"}}}}"#, "x".repeat(7000));
        assert!(Policy::parse(&big).is_err());
    }
}
