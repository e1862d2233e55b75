//! Every API's `aps:` (or `iam:`) action and resource ARN, as AMP names
//! them: the one place the policy check learns what a request does.

use common::arn::ArnScheme;

/// What a request asks to do, for the policy check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// E.g. `aps:QueryMetrics`; every one must be allowed.
    pub actions: Vec<&'static str>,
    /// The resource's ARN (a wildcard ARN for collections).
    pub resource: String,
}

/// The actions and resource of a request, `None` for a request that is no
/// API (refused). `HEAD` is checked as the `GET` it is served as.
/// `key_owner` gives the ARN of the principal owning an access key, so that
/// rotating or revoking a key is checked on its owner.
pub fn action_for(
    method: &str,
    raw_path: &str,
    arns: &ArnScheme,
    key_owner: &dyn Fn(&str) -> Option<String>,
) -> Option<Action> {
    let account_id = arns.account_id.as_str();
    let method = if method == "HEAD" { "GET" } else { method };
    let segments: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
    let workspace = |id: &str| arns.workspace(&decode(id));
    let act = |action: &'static str, resource: String| Some(Action { actions: vec![action], resource });
    match (method, segments.as_slice()) {
        ("POST", ["workspaces"]) => act("aps:CreateWorkspace", arns.workspace("*")),
        ("GET", ["workspaces"]) => act("aps:ListWorkspaces", arns.workspace("*")),
        ("GET", ["workspaces", id]) => act("aps:DescribeWorkspace", workspace(id)),
        ("DELETE", ["workspaces", id]) => act("aps:DeleteWorkspace", workspace(id)),
        ("POST", ["workspaces", id, "alias"]) => act("aps:UpdateWorkspaceAlias", workspace(id)),
        ("GET", ["workspaces", id, "configuration"]) => act("aps:DescribeWorkspaceConfiguration", workspace(id)),
        ("PATCH", ["workspaces", id, "configuration"]) => act("aps:UpdateWorkspaceConfiguration", workspace(id)),
        // A new namespace's name is in the body: creating is checked on
        // the workspace, as listing is.
        ("POST", ["workspaces", id, "rulegroupsnamespaces"]) => act("aps:CreateRuleGroupsNamespace", workspace(id)),
        ("GET", ["workspaces", id, "rulegroupsnamespaces"]) => act("aps:ListRuleGroupsNamespaces", workspace(id)),
        (_, ["workspaces", id, "rulegroupsnamespaces", name]) => {
            let action = match method {
                "GET" => "aps:DescribeRuleGroupsNamespace",
                "PUT" => "aps:PutRuleGroupsNamespace",
                "DELETE" => "aps:DeleteRuleGroupsNamespace",
                _ => return None,
            };
            act(action, arns.rule_groups_namespace(&decode(id), &decode(name)))
        }
        (_, ["workspaces", id, "alertmanager", "definition"]) => {
            let action = match method {
                "POST" => "aps:CreateAlertManagerDefinition",
                "PUT" => "aps:PutAlertManagerDefinition",
                "GET" => "aps:DescribeAlertManagerDefinition",
                "DELETE" => "aps:DeleteAlertManagerDefinition",
                _ => return None,
            };
            act(action, workspace(id))
        }
        (_, ["workspaces", id, "alertmanager", "api", "v2", rest @ ..]) => {
            let action = match (method, rest) {
                ("GET", ["alerts"]) => "aps:ListAlertManagerAlerts",
                ("POST", ["alerts"]) => "aps:CreateAlertManagerAlerts",
                ("GET", ["alerts", "groups"]) => "aps:ListAlertManagerAlertGroups",
                ("GET", ["silences"]) => "aps:ListAlertManagerSilences",
                ("POST", ["silences"]) => "aps:PutAlertManagerSilences",
                ("GET", ["silence", _]) => "aps:GetAlertManagerSilence",
                ("DELETE", ["silence", _]) => "aps:DeleteAlertManagerSilence",
                ("GET", ["status"]) => "aps:GetAlertManagerStatus",
                ("GET", ["receivers"]) => "aps:ListAlertManagerReceivers",
                _ => return None,
            };
            act(action, workspace(id))
        }
        // PromLake's own metrics name workspaces: an operator's right.
        ("GET", ["metrics"]) => act("promlake:GetMetrics", "*".to_owned()),
        ("GET", ["tags", arn]) => act("aps:ListTagsForResource", decode(arn)),
        ("POST", ["tags", arn]) => act("aps:TagResource", decode(arn)),
        ("DELETE", ["tags", arn]) => act("aps:UntagResource", decode(arn)),
        (_, ["workspaces", id, "api", "v1", rest @ ..]) => {
            let action = match (method, rest) {
                ("POST", ["remote_write"]) => "aps:RemoteWrite",
                (
                    "GET" | "POST",
                    ["query" | "query_range" | "query_exemplars" | "format_query" | "parse_query" | "explain"],
                ) => "aps:QueryMetrics",
                ("GET", ["status", "buildinfo"]) => "aps:QueryMetrics",
                ("GET" | "POST", ["series"]) => "aps:GetSeries",
                ("GET" | "POST", ["labels"] | ["label", _, "values"]) => "aps:GetLabels",
                ("GET", ["metadata"]) => "aps:GetMetricMetadata",
                ("GET", ["rules"]) => "aps:ListRules",
                ("GET", ["alerts"]) => "aps:ListAlerts",
                _ => return None,
            };
            act(action, workspace(id))
        }
        (_, ["iam", rest @ ..]) => {
            let user = |name: &str| format!("arn:aws:iam::{account_id}:user/{}", decode(name));
            let owner =
                |id: &str| key_owner(&decode(id)).unwrap_or_else(|| format!("arn:aws:iam::{account_id}:user/*"));
            let both = |actions: Vec<&'static str>, resource: String| Some(Action { actions, resource });
            match (method, rest) {
                // Creating a principal gives it policies: both rights needed.
                ("POST", ["principals"]) => {
                    both(vec!["iam:CreateUser", "iam:PutUserPolicy"], format!("arn:aws:iam::{account_id}:user/*"))
                }
                ("GET", ["principals", name]) => act("iam:GetUser", user(name)),
                ("PUT", ["principals", name, "policies"]) => act("iam:PutUserPolicy", user(name)),
                ("POST", ["principals", name, "keys"]) => act("iam:CreateAccessKey", user(name)),
                ("POST", ["keys", id, "rotate"]) => both(vec!["iam:CreateAccessKey", "iam:UpdateAccessKey"], owner(id)),
                ("DELETE", ["keys", id]) => act("iam:UpdateAccessKey", owner(id)),
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
        let owner = |id: &str| (id == "AKIAOWNED").then(|| "arn:aws:iam::123456789012:user/bob".to_owned());
        let a = |m: &str, p: &str| action_for(m, p, &arns, &owner).map(|a| (a.actions[0], a.resource));
        assert_eq!(a("POST", "/workspaces/ws-1/api/v1/remote_write"), Some(("aps:RemoteWrite", ws.into())));
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/query"), Some(("aps:QueryMetrics", ws.into())));
        let am = "/workspaces/ws-1/alertmanager/api/v2";
        assert_eq!(a("POST", &format!("{am}/alerts")), Some(("aps:CreateAlertManagerAlerts", ws.into())));
        assert_eq!(a("GET", &format!("{am}/alerts/groups")), Some(("aps:ListAlertManagerAlertGroups", ws.into())));
        assert_eq!(a("DELETE", &format!("{am}/silence/x")), Some(("aps:DeleteAlertManagerSilence", ws.into())));
        assert_eq!(a("PUT", &format!("{am}/silences")), None);
        assert_eq!(a("POST", "/workspaces/ws-1/api/v1/query_range"), Some(("aps:QueryMetrics", ws.into())));
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/label/job/values"), Some(("aps:GetLabels", ws.into())));
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/series"), Some(("aps:GetSeries", ws.into())));
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/metadata"), Some(("aps:GetMetricMetadata", ws.into())));
        assert_eq!(a("GET", "/workspaces"), Some(("aps:ListWorkspaces", arns.workspace("*"))));
        let def = "/workspaces/ws-1/alertmanager/definition";
        assert_eq!(a("POST", def), Some(("aps:CreateAlertManagerDefinition", ws.into())));
        assert_eq!(a("PUT", def), Some(("aps:PutAlertManagerDefinition", ws.into())));
        assert_eq!(a("GET", def), Some(("aps:DescribeAlertManagerDefinition", ws.into())));
        assert_eq!(a("DELETE", def), Some(("aps:DeleteAlertManagerDefinition", ws.into())));
        assert_eq!(a("PATCH", def), None);
        assert_eq!(a("PATCH", "/workspaces/ws-1/configuration"), Some(("aps:UpdateWorkspaceConfiguration", ws.into())));
        assert_eq!(
            a("GET", "/tags/arn%3Aaws%3Aaps%3Aus-east-1%3A123456789012%3Aworkspace%2Fws-1"),
            Some(("aps:ListTagsForResource", ws.into()))
        );
        let ns = "arn:aws:aps:us-east-1:123456789012:rulegroupsnamespace/ws-1/my%20rules";
        assert_eq!(
            a("POST", "/workspaces/ws-1/rulegroupsnamespaces"),
            Some(("aps:CreateRuleGroupsNamespace", ws.into()))
        );
        assert_eq!(
            a("GET", "/workspaces/ws-1/rulegroupsnamespaces"),
            Some(("aps:ListRuleGroupsNamespaces", ws.into()))
        );
        assert_eq!(
            a("PUT", "/workspaces/ws-1/rulegroupsnamespaces/my%2520rules"),
            Some(("aps:PutRuleGroupsNamespace", ns.into()))
        );
        assert_eq!(
            a("GET", "/workspaces/ws-1/rulegroupsnamespaces/x"),
            Some(("aps:DescribeRuleGroupsNamespace", ns.replace("my%20rules", "x")))
        );
        assert_eq!(
            a("DELETE", "/workspaces/ws-1/rulegroupsnamespaces/x"),
            Some(("aps:DeleteRuleGroupsNamespace", ns.replace("my%20rules", "x")))
        );
        assert_eq!(a("POST", "/workspaces/ws-1/rulegroupsnamespaces/x"), None);
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/nothing"), None);
        assert_eq!(a("GET", "/elsewhere"), None);
        assert_eq!(a("GET", "/workspaces/ws-1/api/v1/remote_write"), None);
        assert_eq!(a("HEAD", "/workspaces/ws-1"), Some(("aps:DescribeWorkspace", ws.into())));
        assert_eq!(a("POST", "/workspaces/ws-1/api/v1/explain"), Some(("aps:QueryMetrics", ws.into())));
        assert_eq!(a("GET", "/workspaces//ws-1"), None);
        assert_eq!(a("PUT", "/workspaces/ws-1/api/v1/query"), None);
        assert_eq!(
            a("DELETE", "/iam/keys/AKIAOWNED"),
            Some(("iam:UpdateAccessKey", "arn:aws:iam::123456789012:user/bob".into()))
        );
        let create = action_for("POST", "/iam/principals", &arns, &owner).unwrap();
        assert_eq!(create.actions, ["iam:CreateUser", "iam:PutUserPolicy"]);
    }
}
