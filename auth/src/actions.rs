//! Every API's `aps:` (or `iam:`) action and resource ARN, as AMP names
//! them: the one place the policy check learns what a request does.

use common::arn::ArnScheme;

/// What a request asks to do, for the policy check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// E.g. `aps:QueryMetrics`.
    pub action: &'static str,
    /// The resource's ARN (a wildcard ARN for collections).
    pub resource: String,
}

/// The action and resource of a request, `None` for a path that is no API
/// (the router answers 404).
pub fn action_for(method: &str, raw_path: &str, arns: &ArnScheme, account_id: &str) -> Option<Action> {
    let segments: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
    let workspace = |id: &str| arns.workspace(&decode(id));
    let act = |action: &'static str, resource: String| Some(Action { action, resource });
    match (method, segments.as_slice()) {
        ("POST", ["workspaces"]) => act("aps:CreateWorkspace", arns.workspace("*")),
        ("GET", ["workspaces"]) => act("aps:ListWorkspaces", arns.workspace("*")),
        ("GET", ["workspaces", id]) => act("aps:DescribeWorkspace", workspace(id)),
        ("DELETE", ["workspaces", id]) => act("aps:DeleteWorkspace", workspace(id)),
        ("POST", ["workspaces", id, "alias"]) => act("aps:UpdateWorkspaceAlias", workspace(id)),
        ("GET", ["workspaces", id, "configuration"]) => act("aps:DescribeWorkspaceConfiguration", workspace(id)),
        ("PATCH", ["workspaces", id, "configuration"]) => act("aps:UpdateWorkspaceConfiguration", workspace(id)),
        ("GET", ["tags", arn]) => act("aps:ListTagsForResource", decode(arn)),
        ("POST", ["tags", arn]) => act("aps:TagResource", decode(arn)),
        ("DELETE", ["tags", arn]) => act("aps:UntagResource", decode(arn)),
        (_, ["workspaces", id, "api", "v1", rest @ ..]) => {
            let action = match (method, rest) {
                ("POST", ["remote_write"]) => "aps:RemoteWrite",
                (_, ["query" | "query_range" | "query_exemplars" | "format_query" | "parse_query"]) => {
                    "aps:QueryMetrics"
                }
                (_, ["status", "buildinfo"]) => "aps:QueryMetrics",
                (_, ["series"]) => "aps:GetSeries",
                (_, ["labels"] | ["label", _, "values"]) => "aps:GetLabels",
                (_, ["metadata"]) => "aps:GetMetricMetadata",
                (_, ["rules"]) => "aps:ListRules",
                (_, ["alerts"]) => "aps:ListAlerts",
                _ => return None,
            };
            act(action, workspace(id))
        }
        (_, ["iam", rest @ ..]) => {
            let user = |name: &str| format!("arn:aws:iam::{account_id}:user/{}", decode(name));
            match (method, rest) {
                ("POST", ["principals"]) => act("iam:CreateUser", format!("arn:aws:iam::{account_id}:user/*")),
                ("GET", ["principals", name]) => act("iam:GetUser", user(name)),
                ("PUT", ["principals", name, "policies"]) => act("iam:PutUserPolicy", user(name)),
                ("POST", ["principals", name, "keys"]) => act("iam:CreateAccessKey", user(name)),
                ("POST", ["keys", _, "rotate"]) => {
                    act("iam:CreateAccessKey", format!("arn:aws:iam::{account_id}:user/*"))
                }
                ("DELETE", ["keys", _]) => act("iam:UpdateAccessKey", format!("arn:aws:iam::{account_id}:user/*")),
                _ => None,
            }
        }
        _ => None,
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apis_map_to_amps_actions() {
        let arns = ArnScheme { region: "us-east-1".into(), account_id: "123456789012".into() };
        let ws = "arn:aws:aps:us-east-1:123456789012:workspace/ws-1";
        let a = |m: &str, p: &str| action_for(m, p, &arns, "123456789012").map(|a| (a.action, a.resource));
        assert_eq!(a("POST", "/workspaces/ws-1/api/v1/remote_write"), Some(("aps:RemoteWrite", ws.into())));
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/query"), Some(("aps:QueryMetrics", ws.into())));
        assert_eq!(a("POST", "/workspaces/ws-1/api/v1/query_range"), Some(("aps:QueryMetrics", ws.into())));
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/label/job/values"), Some(("aps:GetLabels", ws.into())));
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/series"), Some(("aps:GetSeries", ws.into())));
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/metadata"), Some(("aps:GetMetricMetadata", ws.into())));
        assert_eq!(a("GET", "/workspaces"), Some(("aps:ListWorkspaces", arns.workspace("*"))));
        assert_eq!(a("PATCH", "/workspaces/ws-1/configuration"), Some(("aps:UpdateWorkspaceConfiguration", ws.into())));
        assert_eq!(
            a("GET", "/tags/arn%3Aaws%3Aaps%3Aus-east-1%3A123456789012%3Aworkspace%2Fws-1"),
            Some(("aps:ListTagsForResource", ws.into()))
        );
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/nothing"), None);
        assert_eq!(a("GET", "/elsewhere"), None);
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/remote_write"), None);
    }
}
