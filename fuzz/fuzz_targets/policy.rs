//! The IAM policy parser and evaluator on arbitrary documents: never a
//! panic; an explicit Deny of everything always wins.

#![no_main]

use auth::policy::{Decision, Policy, evaluate, wildcard_match};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (doc, probe) = text.split_once('\n').unwrap_or((text, "aps:QueryMetrics arn:aws:aps:us-east-1:0:workspace/ws"));
    let (action, resource) = probe.split_once(' ').unwrap_or((probe, "*"));
    let _ = wildcard_match(action, resource);
    if let Ok(policy) = Policy::parse(doc) {
        let decision = policy.decide(action, resource);
        let deny_all =
            Policy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#)
                .unwrap();
        assert_eq!(evaluate(&[policy.clone(), deny_all], action, resource), Decision::ExplicitDeny);
        assert_eq!(evaluate(&[policy], action, resource), decision);
    }
});
