//! What the patched promql-parser (`patches/promql-parser`) parses:
//! Prometheus 3.5's duration expressions (arithmetic in range and subquery
//! brackets and in a parenthesized offset, evaluated at parse time in
//! seconds and truncated to milliseconds as Prometheus does), string
//! escapes that are bytes as in Go, and `info`'s label selector.

use std::time::Duration;

use promql_parser::parser::{Expr, Offset, parse};

fn range_of(q: &str) -> Duration {
    match parse(q).unwrap_or_else(|e| panic!("{q}: {e}")) {
        Expr::MatrixSelector(ms) => ms.range,
        Expr::Call(c) => match c.args.args[0].as_ref() {
            Expr::MatrixSelector(ms) => ms.range,
            other => panic!("{q}: not a range selector: {other:?}"),
        },
        other => panic!("{q}: not a range selector: {other:?}"),
    }
}

fn offset_of(q: &str) -> Offset {
    match parse(q).unwrap_or_else(|e| panic!("{q}: {e}")) {
        Expr::VectorSelector(vs) => vs.offset.expect("an offset"),
        other => panic!("{q}: not a vector selector: {other:?}"),
    }
}

#[test]
fn arithmetic_in_range_brackets() {
    let cases = [
        ("rate(x[26m+4m])", 1_800_000),
        ("rate(x[30m+0s])", 1_800_000),
        ("rate(x[60*30])", 1_800_000),
        ("rate(x[2m*(10+5)])", 1_800_000),
        ("rate(x[24m+((1.5*2m)+2m)])", 1_740_000),
        ("rate(x[-5m+35m])", 1_800_000),
        ("rate(x[1h/2])", 1_800_000),
        ("rate(x[1h30m % 1h])", 1_800_000),
        ("rate(x[30m1s-30m1s % 1m])", 1_800_000),
        ("rate(x[2^3 * 1m])", 480_000),
        // Unary minus binds tighter than * but looser than ^.
        ("rate(x[-2^2 * -1m])", 240_000),
        // Truncated to milliseconds.
        ("rate(x[1/3])", 333),
        ("x[5m]", 300_000),
        // A single literal is exact (1.001 s * 1000 is 1000.999… in floats).
        ("x[1001ms]", 1001),
        ("x[(2002ms)]", 2002),
        ("x[+1003ms]", 1003),
        ("x[90]", 90_000),
    ];
    for (q, ms) in cases {
        assert_eq!(range_of(q), Duration::from_millis(ms), "{q}");
    }
}

#[test]
fn arithmetic_in_subquery_range_and_step() {
    let Expr::Subquery(sq) = parse("x[29s+1s:((((8 - 2) / 3) * 7s) % 4) + 8000ms]").unwrap() else {
        panic!("not a subquery")
    };
    assert_eq!(sq.range, Duration::from_secs(30));
    assert_eq!(sq.step, Some(Duration::from_secs(10)));
    let Expr::Subquery(sq) = parse("x[(9m30s+30s)*3:]").unwrap() else { panic!("not a subquery") };
    assert_eq!((sq.range, sq.step), (Duration::from_secs(1800), None));
}

#[test]
fn parenthesized_offsets_and_precedence() {
    assert_eq!(offset_of("x offset (100 + 2)"), Offset::Pos(Duration::from_secs(102)));
    assert_eq!(offset_of("x offset (2 ^ 2)"), Offset::Pos(Duration::from_secs(4)));
    assert_eq!(offset_of("x offset (-2 ^ 2)"), Offset::Neg(Duration::from_secs(4)));
    assert_eq!(offset_of("x offset -(1m * 2)"), Offset::Neg(Duration::from_secs(120)));
    assert_eq!(offset_of("x offset (0s)"), Offset::Pos(Duration::ZERO));
    assert_eq!(offset_of("x offset (1001ms)"), Offset::Pos(Duration::from_millis(1001)));
    assert_eq!(offset_of("x offset -(1001ms)"), Offset::Neg(Duration::from_millis(1001)));
    // Without parentheses only the first duration is the offset.
    let Expr::Binary(b) = parse("x offset 100 + 2").unwrap() else { panic!("not a binary expression") };
    let Expr::VectorSelector(vs) = b.lhs.as_ref() else { panic!("lhs is not a selector") };
    assert_eq!(vs.offset, Some(Offset::Pos(Duration::from_secs(100))));
    let Expr::Binary(b) = parse("x offset -2 * 2").unwrap() else { panic!("not a binary expression") };
    assert!(
        matches!(b.lhs.as_ref(), Expr::VectorSelector(vs) if vs.offset == Some(Offset::Neg(Duration::from_secs(2))))
    );
}

#[test]
fn bad_duration_expressions_are_parse_errors() {
    for (q, msg) in [
        ("x[1m-1m]", "duration must be greater than 0"),
        ("x[-5m]", "duration must be greater than 0"),
        ("x[5m:1m-2m]", "duration must be greater than 0"),
        ("x[1m/0]", "division by zero"),
        ("x[1m%0]", "modulo by zero"),
        ("x offset (1m/0)", "division by zero"),
        ("x[1e300*1e300]", "duration is out of range"),
        ("x offset (1e300*1e300)", "duration is out of range"),
        ("x offset 1e300", "duration is out of range"),
        // Prometheus bounds durations at 2^63 ns (about 292 years).
        ("x offset 9.5e10", "duration is out of range"),
        ("x[9.5e10]", "duration is out of range"),
        ("x[5m:9.5e10]", "duration is out of range"),
        ("x offset (9.5e10 * 1)", "duration is out of range"),
        ("x offset 300y", "duration is out of range"),
        ("x[(5m]", ""),
        ("x[5m)]", ""),
        ("x[5m+]", ""),
    ] {
        let err = parse(q).expect_err(q);
        assert!(err.contains(msg), "{q}: {err}");
    }
}

#[test]
fn hex_and_octal_escapes_are_bytes() {
    let Expr::StringLiteral(s) = parse(r#""caf\xc3\xa9 \303\251 \u00e9""#).unwrap() else { panic!("not a string") };
    assert_eq!(s.val, "café é é");
    // Bytes that are not UTF-8 are kept, as Go keeps them (the engine
    // refuses them where a label name is needed); `val` has U+FFFD in
    // their place. A label matcher's value must be UTF-8.
    let Expr::Aggregate(a) = parse(r#"count_values("a\xc5z", x)"#).unwrap() else { panic!("not an aggregation") };
    let Some(Expr::StringLiteral(s)) = a.param.as_deref() else { panic!("no string parameter") };
    assert_eq!((s.bytes.as_deref(), s.val.as_str()), (Some(&b"a\xc5z"[..]), "a\u{fffd}z"));
    assert_eq!(parse(r#"x{a="\xff"}"#).unwrap_err(), "invalid UTF-8 in string literal");
}

#[test]
fn info_takes_a_label_selector_that_may_match_the_empty_string() {
    for q in [
        r#"info(metric, {data=~".*"})"#,
        r#"info(metric, {__name__!~".+_info", data=~".*"})"#,
        r#"info(rate(x[5m]), {__name__="build_info"})"#,
        "info(metric)",
    ] {
        match parse(q).unwrap_or_else(|e| panic!("{q}: {e}")) {
            Expr::Call(c) => assert_eq!(c.func.name, "info", "{q}"),
            other => panic!("{q}: not a call: {other:?}"),
        }
    }
    // Only info's second argument is exempt; every other selector still
    // needs a matcher that rejects "".
    for q in [
        r#"{data=~".*"}"#,
        r#"info({data=~".*"})"#,
        r#"info(metric, {a="b"}) + {x=""}"#,
        r#"rate({x=~".*"}[5m])"#,
        r#"sum(info(metric, {data=~".*"})) by (x) / count({y!="a"})"#,
        r#"abs({x=~".*"}[5m:1m])"#,
    ] {
        let e = parse(q).expect_err(q);
        assert_eq!(e, "vector selector must contain at least one non-empty matcher", "{q}");
    }
    let e = parse("info(metric, build_info)").expect_err("a metric name");
    assert_eq!(e, "expected label selectors only, got vector selector instead");
}
