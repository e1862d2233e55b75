//! `/api/v1/parse_query`: a parsed expression as the JSON tree that
//! Prometheus 3.5's `translateAST` produces for its UI's tree view.

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::ast::{AtModifier, Offset};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, LabelModifier, VectorMatchCardinality, VectorSelector};
use serde_json::{Value, json};

use super::respond::format_value;

/// The JSON tree of `expr`.
pub fn translate(expr: &Expr) -> Value {
    match expr {
        Expr::Aggregate(a) => json!({
            "type": "aggregation",
            "op": a.op.to_string(),
            "expr": translate(&a.expr),
            "param": a.param.as_deref().map_or(Value::Null, translate),
            "grouping": a.modifier.as_ref().map_or_else(Vec::new, |m| m.labels().labels.clone()),
            "without": matches!(a.modifier, Some(LabelModifier::Exclude(_))),
        }),
        Expr::Binary(b) => {
            let both_vectors = b.lhs.value_type() == ValueType::Vector && b.rhs.value_type() == ValueType::Vector;
            let matching = if both_vectors {
                let (card, include) = match b.modifier.as_ref().map(|m| &m.card) {
                    Some(VectorMatchCardinality::ManyToOne(l)) => ("many-to-one", l.labels.clone()),
                    Some(VectorMatchCardinality::OneToMany(l)) => ("one-to-many", l.labels.clone()),
                    Some(VectorMatchCardinality::ManyToMany) => ("many-to-many", Vec::new()),
                    _ if b.op.is_set_operator() => ("many-to-many", Vec::new()),
                    _ => ("one-to-one", Vec::new()),
                };
                let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
                json!({
                    "card": card,
                    "labels": matching.map_or_else(Vec::new, |m| m.labels().labels.clone()),
                    "on": matches!(matching, Some(LabelModifier::Include(_))),
                    "include": include,
                })
            } else {
                Value::Null
            };
            json!({
                "type": "binaryExpr",
                "op": b.op.to_string(),
                "lhs": translate(&b.lhs),
                "rhs": translate(&b.rhs),
                "matching": matching,
                "bool": b.modifier.as_ref().is_some_and(|m| m.return_bool),
            })
        }
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name,
                "argTypes": c.func.arg_types.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "variadic": c.func.variadic,
                "returnType": c.func.return_type.to_string(),
            },
            "args": c.args.args.iter().map(|a| translate(a)).collect::<Vec<_>>(),
        }),
        Expr::MatrixSelector(m) => {
            let mut v = selector(&m.vs, "matrixSelector");
            v["range"] = json!(m.range.as_millis() as i64);
            v
        }
        Expr::Subquery(s) => json!({
            "type": "subquery",
            "expr": translate(&s.expr),
            "range": s.range.as_millis() as i64,
            "offset": offset_ms(s.offset.as_ref()),
            "step": s.step.map_or(0, |d| d.as_millis() as i64),
            "timestamp": timestamp(s.at.as_ref()),
            "startOrEnd": start_or_end(s.at.as_ref()),
        }),
        Expr::NumberLiteral(n) => json!({ "type": "numberLiteral", "val": format_value(n.val) }),
        Expr::Paren(p) => json!({ "type": "parenExpr", "expr": translate(&p.expr) }),
        Expr::StringLiteral(s) => json!({ "type": "stringLiteral", "val": s.val }),
        Expr::Unary(u) => json!({ "type": "unaryExpr", "op": "-", "expr": translate(&u.expr) }),
        Expr::VectorSelector(vs) => selector(vs, "vectorSelector"),
        Expr::Extension(_) => Value::Null,
    }
}

fn selector(vs: &VectorSelector, kind: &str) -> Value {
    json!({
        "type": kind,
        "name": vs.name.clone().unwrap_or_default(),
        "offset": offset_ms(vs.offset.as_ref()),
        "matchers": matchers(vs),
        "timestamp": timestamp(vs.at.as_ref()),
        "startOrEnd": start_or_end(vs.at.as_ref()),
    })
}

/// The matchers as Prometheus's parser lists them: those written, then the
/// metric name's.
fn matchers(vs: &VectorSelector) -> Vec<Value> {
    let one = |m: &Matcher| json!({ "name": m.name, "value": m.value, "type": op(&m.op) });
    let Matchers { matchers, or_matchers } = &vs.matchers;
    let mut out: Vec<Value> = matchers.iter().chain(or_matchers.iter().flatten()).map(one).collect();
    if let Some(name) = &vs.name {
        out.push(json!({ "name": "__name__", "value": name, "type": "=" }));
    }
    out
}

fn op(op: &MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Re(_) => "=~",
        MatchOp::NotRe(_) => "!~",
    }
}

fn offset_ms(offset: Option<&Offset>) -> i64 {
    match offset {
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

fn timestamp(at: Option<&AtModifier>) -> Value {
    match at {
        Some(AtModifier::At(t)) => json!(match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        }),
        _ => Value::Null,
    }
}

fn start_or_end(at: Option<&AtModifier>) -> Value {
    match at {
        Some(AtModifier::Start) => json!("start"),
        Some(AtModifier::End) => json!("end"),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(q: &str) -> Value {
        translate(&promql_parser::parser::parse(q).unwrap())
    }

    #[test]
    fn selectors_list_the_name_matcher_last_with_offset_and_at() {
        let v = tree(r#"up{job="api"} offset 5m @ 100"#);
        assert_eq!(v["type"], "vectorSelector");
        assert_eq!(v["name"], "up");
        assert_eq!(v["offset"], 300_000);
        assert_eq!(v["timestamp"], 100_000);
        assert_eq!(v["startOrEnd"], Value::Null);
        assert_eq!(
            v["matchers"],
            json!([{"name":"job","value":"api","type":"="},{"name":"__name__","value":"up","type":"="}])
        );
        let m = tree("rate(x[5m] @ end())");
        assert_eq!(m["func"]["name"], "rate");
        assert_eq!(m["func"]["argTypes"], json!(["matrix"]));
        assert_eq!(m["func"]["returnType"], "vector");
        assert_eq!(m["args"][0]["type"], "matrixSelector");
        assert_eq!(m["args"][0]["range"], 300_000);
        assert_eq!(m["args"][0]["startOrEnd"], "end");
    }

    #[test]
    fn binary_expressions_carry_matching_only_between_vectors() {
        let v = tree("a / on(job) group_left(instance) b");
        assert_eq!(v["matching"], json!({"card":"many-to-one","labels":["job"],"on":true,"include":["instance"]}));
        let s = tree("a * 2");
        assert_eq!(s["matching"], Value::Null);
        assert_eq!(s["rhs"], json!({"type":"numberLiteral","val":"2"}));
        let set = tree("a and b");
        assert_eq!(set["matching"]["card"], "many-to-many");
        let cmp = tree("a > bool 1");
        assert_eq!(cmp["bool"], true);
    }

    #[test]
    fn aggregations_and_subqueries() {
        let v = tree("topk without (job) (3, x)");
        assert_eq!(v["op"], "topk");
        assert_eq!(v["without"], true);
        assert_eq!(v["grouping"], json!(["job"]));
        assert_eq!(v["param"]["val"], "3");
        let s = tree("max_over_time(x[1h:5m] offset 1m)");
        let sq = &s["args"][0];
        assert_eq!(sq["type"], "subquery");
        assert_eq!(
            (sq["range"].as_i64(), sq["step"].as_i64(), sq["offset"].as_i64()),
            (Some(3_600_000), Some(300_000), Some(60_000))
        );
    }
}
