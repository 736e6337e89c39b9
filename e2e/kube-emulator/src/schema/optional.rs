//! CEL's optional types in `x-kubernetes-validations`, as kube-apiserver (1.29+) has them with
//! cel-go's OptionalTypes library: `?.` and `[?]` selection, `optional.of/none/ofNonZeroValue`,
//! `hasValue()`, `value()`, `or()`, `orValue()`, the `optMap` and `optFlatMap` macros, and rules
//! with `optionalOldSelf: true`, where `oldSelf` is an optional (none on create).
//!
//! The cel crate evaluates optional values, but kube-cel parses rules without optional syntax
//! (the rule is refused), binds `oldSelf` to null under `optionalOldSelf`, and has no `optMap`:
//! rules that need any of these are taken out of the schema given to kube-cel and evaluated here,
//! on the same nodes (object properties, map values, list items).

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, operators};
use cel::objects::{Key, Map, OptionalValue};
use cel::parser::Parser;
use cel::{Context, ExecutionError, FunctionContext, IdedExpr, Value as Cel};
use kube_cel::KubeCelExt;
use kube_cel::cel;
use serde_json::Value;

use super::errors::{FieldError, FieldErrorKind};

/// A step from a schema node to a child node.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Property(String),
    Items,
    Values,
}

/// A rule this module evaluates, and where it sits.
#[derive(Debug)]
struct NodeRule {
    steps: Vec<Step>,
    node_type: String,
    source: String,
    program: IdedExpr,
    message: Option<String>,
    message_program: Option<IdedExpr>,
    reason: Option<String>,
    field_path: Option<String>,
    optional_old_self: bool,
    transition: bool,
}

/// The rules of a schema that need optional types.
#[derive(Debug, Default)]
pub struct OptionalRules(Vec<NodeRule>);

fn optional_parser() -> Parser {
    Parser::new().enable_optional_syntax(true)
}

/// Parses with optional syntax. `?.` and `[?]` on a plain map fail on a missing key in the cel
/// crate (0.13) where cel-go answers `optional.none()`: they are evaluated by this module's
/// functions instead.
fn parse(source: &str) -> Option<IdedExpr> {
    let mut expr = optional_parser().parse(source).ok()?;
    reroute_optional_access(&mut expr);
    Some(expr)
}

const OPT_SELECT: &str = "kube_emulator.optSelect";
const OPT_INDEX: &str = "kube_emulator.optIndex";

fn reroute_optional_access(e: &mut IdedExpr) {
    match &mut e.expr {
        Expr::Call(call) => {
            if call.func_name == operators::OPT_SELECT {
                call.func_name = OPT_SELECT.into();
            } else if call.func_name == operators::OPT_INDEX {
                call.func_name = OPT_INDEX.into();
            }
            if let Some(t) = call.target.as_deref_mut() {
                reroute_optional_access(t);
            }
            call.args.iter_mut().for_each(reroute_optional_access);
        }
        Expr::Comprehension(c) => {
            for sub in [&mut c.iter_range, &mut c.accu_init, &mut c.loop_cond, &mut c.loop_step, &mut c.result] {
                reroute_optional_access(sub);
            }
        }
        Expr::List(l) => l.elements.iter_mut().for_each(reroute_optional_access),
        Expr::Map(m) => {
            for entry in &mut m.entries {
                if let EntryExpr::MapEntry(me) = &mut entry.expr {
                    reroute_optional_access(&mut me.key);
                    reroute_optional_access(&mut me.value);
                }
            }
        }
        Expr::Select(sel) => reroute_optional_access(&mut sel.operand),
        Expr::Struct(st) => {
            for entry in &mut st.entries {
                if let EntryExpr::StructField(f) = &mut entry.expr {
                    reroute_optional_access(&mut f.value);
                }
            }
        }
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => {}
    }
}

/// `a.?f` and `a[?k]`: an optional of the member, none when absent (or when `a` is none).
fn optional_access(ftx: &FunctionContext) -> Result<Cel, ExecutionError> {
    let [operand, key] = ftx.args else {
        return Err(ExecutionError::function_error(ftx.name, "takes an operand and a key"));
    };
    let operand = Cel::resolve(operand, ftx.ptx)?;
    let key = Cel::resolve(key, ftx.ptx)?;
    let operand = match &operand {
        Cel::Opaque(_) => match <&OptionalValue>::try_from(&operand)?.value() {
            Some(v) => v.clone(),
            None => return Ok(none()),
        },
        _ => operand,
    };
    let member = match (&operand, &key) {
        (Cel::Map(m), Cel::String(k)) => m.map.get(&Key::from(k.as_str())).cloned(),
        (Cel::Map(m), Cel::Int(i)) => m.map.get(&Key::from(*i)).cloned(),
        (Cel::List(l), Cel::Int(i)) => usize::try_from(*i).ok().and_then(|i| l.get(i)).cloned(),
        (Cel::Null, _) => None,
        _ => return Err(ExecutionError::function_error(ftx.name, "no such overload")),
    };
    Ok(member.map_or_else(none, |v| Cel::Opaque(Arc::new(OptionalValue::of(v)))))
}

fn none() -> Cel {
    Cel::Opaque(Arc::new(OptionalValue::none()))
}

/// Whether kube-cel cannot evaluate a rule as the real server does, while this module can.
fn needs_optional_types(rule: &Value) -> bool {
    let Some(source) = rule.get("rule").and_then(Value::as_str) else { return false };
    if parse(source).is_none() {
        return false; // kube-cel reports the compile error, as the server refuses the CRD
    }
    rule.get("optionalOldSelf").and_then(Value::as_bool) == Some(true)
        || cel::Program::compile(source).is_err()
        || source.contains("optMap(")
        || source.contains("optFlatMap(")
}

impl OptionalRules {
    /// Splits `schema`: the rules that need optional types are returned here, and removed from
    /// the schema returned for kube-cel.
    pub fn split(schema: &Value) -> (Value, Self) {
        let mut rest = schema.clone();
        let mut rules = Vec::new();
        collect(&mut rest, &mut Vec::new(), &mut rules);
        (rest, Self(rules))
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The failures of these rules on `obj` (and `old` on update).
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for rule in &self.0 {
            let mut nodes = Vec::new();
            nodes_at(obj, old, &rule.steps, String::new(), &mut nodes);
            for (path, value, old_value) in nodes {
                if let Some(e) = evaluate(rule, &path, value, old_value) {
                    errors.push(e);
                }
            }
        }
        errors
    }
}

fn collect(schema: &mut Value, steps: &mut Vec<Step>, out: &mut Vec<NodeRule>) {
    let node_type = schema.get("type").and_then(Value::as_str).unwrap_or("object").to_string();
    if let Some(Value::Array(rules)) = schema.get_mut("x-kubernetes-validations") {
        rules.retain(|r| {
            if !needs_optional_types(r) {
                return true;
            }
            match compile(r, steps, &node_type) {
                Some(rule) => {
                    out.push(rule);
                    false
                }
                None => true,
            }
        });
    }
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        for (name, child) in props.iter_mut() {
            steps.push(Step::Property(name.clone()));
            collect(child, steps, out);
            steps.pop();
        }
    }
    for (key, step) in [("items", Step::Items), ("additionalProperties", Step::Values)] {
        if let Some(child) = schema.get_mut(key).filter(|c| c.is_object()) {
            steps.push(step);
            collect(child, steps, out);
            steps.pop();
        }
    }
}

fn compile(rule: &Value, steps: &[Step], node_type: &str) -> Option<NodeRule> {
    let text = |k: &str| rule.get(k).and_then(Value::as_str).map(String::from);
    let source = text("rule")?;
    let program = parse(&source)?;
    let message_program = text("messageExpression").and_then(|m| parse(&m));
    let transition = references_old_self(&program);
    Some(NodeRule {
        steps: steps.to_vec(),
        node_type: node_type.to_string(),
        source,
        program,
        message: text("message"),
        message_program,
        reason: text("reason"),
        field_path: text("fieldPath"),
        optional_old_self: rule.get("optionalOldSelf").and_then(Value::as_bool) == Some(true),
        transition,
    })
}

fn references_old_self(program: &IdedExpr) -> bool {
    program.references().has_variable("oldSelf")
}

/// The nodes a rule applies to: (path as the server shows it, value, the old value correlated
/// by property name or map key; list items have none).
fn nodes_at<'a>(
    obj: &'a Value,
    old: Option<&'a Value>,
    steps: &[Step],
    path: String,
    out: &mut Vec<(String, &'a Value, Option<&'a Value>)>,
) {
    let Some((step, rest)) = steps.split_first() else {
        out.push((path, obj, old));
        return;
    };
    let join = |p: &str, k: &str| if p.is_empty() { k.to_string() } else { format!("{p}.{k}") };
    match step {
        Step::Property(name) => {
            if let Some(child) = obj.get(name) {
                nodes_at(child, old.and_then(|o| o.get(name)), rest, join(&path, name), out);
            }
        }
        Step::Values => {
            for (k, child) in obj.as_object().into_iter().flatten() {
                nodes_at(child, old.and_then(|o| o.get(k)), rest, format!("{path}[{k}]"), out);
            }
        }
        Step::Items => {
            for (i, child) in obj.as_array().into_iter().flatten().enumerate() {
                nodes_at(child, None, rest, format!("{path}[{i}]"), out);
            }
        }
    }
}

thread_local! {
    /// The functions of kube-apiserver's CEL environment (kube-cel's libraries) and the optional
    /// macros, built once per thread.
    static BASE: Context<'static> = base_context();
}

fn base_context() -> Context<'static> {
    let mut ctx = Context::default();
    ctx.register_all();
    ctx.add_function("optMap", opt_map);
    ctx.add_function("optFlatMap", opt_flat_map);
    ctx.add_function(OPT_SELECT, optional_access);
    ctx.add_function(OPT_INDEX, optional_access);
    ctx
}

fn evaluate(rule: &NodeRule, path: &str, value: &Value, old: Option<&Value>) -> Option<FieldError> {
    if rule.transition && old.is_none() && !rule.optional_old_self {
        return None; // a transition rule is not evaluated without the old value
    }
    BASE.with(|base| {
        let mut ctx = base.new_inner_scope();
        ctx.add_variable_from_value("self", json_to_cel(value));
        let old_self = old.map(json_to_cel);
        if rule.optional_old_self {
            let optional = match old_self {
                Some(v) => OptionalValue::of(v),
                None => OptionalValue::none(),
            };
            ctx.add_variable_from_value("oldSelf", Cel::Opaque(Arc::new(optional)));
        } else if let Some(v) = old_self {
            ctx.add_variable_from_value("oldSelf", v);
        }
        let field = match &rule.field_path {
            Some(p) => format!("{path}{p}").trim_start_matches('.').to_string(),
            None => path.to_string(),
        };
        let kind = match rule.reason.as_deref() {
            Some("FieldValueForbidden") => FieldErrorKind::Forbidden,
            Some("FieldValueRequired") => FieldErrorKind::Required,
            Some("FieldValueDuplicate") => FieldErrorKind::Duplicate,
            _ => FieldErrorKind::Invalid,
        };
        let bad_value = Value::String(rule.node_type.clone());
        match Cel::resolve(&rule.program, &ctx) {
            Ok(Cel::Bool(true)) => None,
            Ok(Cel::Bool(false)) => {
                let message = rule
                    .message_program
                    .as_ref()
                    .and_then(|m| match Cel::resolve(m, &ctx) {
                        Ok(Cel::String(s)) => Some((*s).clone()),
                        _ => None,
                    })
                    .or_else(|| rule.message.clone())
                    .unwrap_or_else(|| format!("failed rule: {}", rule.source));
                Some(FieldError::new(kind, &field, bad_value, message))
            }
            Ok(_) => Some(FieldError::new(
                kind,
                &field,
                bad_value,
                format!("rule \"{}\" did not evaluate to bool", rule.source),
            )),
            Err(e) => Some(FieldError::new(kind, &field, bad_value, format!("rule evaluation error: {e}"))),
        }
    })
}

/// `opt.optMap(v, expr)`: none stays none; otherwise `optional.of(expr)` with `v` bound to the
/// value.
fn opt_map(ftx: &FunctionContext) -> Result<Cel, ExecutionError> {
    match bind_and_resolve(ftx, "optMap")? {
        None => Ok(none()),
        Some(v) => Ok(Cel::Opaque(Arc::new(OptionalValue::of(v)))),
    }
}

/// `opt.optFlatMap(v, expr)`: like optMap, but `expr` is itself an optional.
fn opt_flat_map(ftx: &FunctionContext) -> Result<Cel, ExecutionError> {
    match bind_and_resolve(ftx, "optFlatMap")? {
        None => Ok(none()),
        Some(v) => {
            <&OptionalValue>::try_from(&v)?;
            Ok(v)
        }
    }
}

fn bind_and_resolve(ftx: &FunctionContext, name: &str) -> Result<Option<Cel>, ExecutionError> {
    let this = ftx.this.clone().ok_or_else(|| ExecutionError::function_error(name, "needs a target"))?;
    let optional: &OptionalValue = (&this).try_into()?;
    let Some(value) = optional.value() else { return Ok(None) };
    let [var, expr] = ftx.args else {
        return Err(ExecutionError::function_error(name, "takes a variable and an expression"));
    };
    let Expr::Ident(var) = &var.expr else {
        return Err(ExecutionError::function_error(name, "the first argument must be a variable name"));
    };
    let mut inner = ftx.ptx.new_inner_scope();
    inner.add_variable_from_value(var.as_str(), value.clone());
    Cel::resolve(expr, &inner).map(Some)
}

fn json_to_cel(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => n.as_i64().map(Cel::Int).unwrap_or_else(|| Cel::Float(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(a) => Cel::List(Arc::new(a.iter().map(json_to_cel).collect())),
        Value::Object(m) => {
            let map: HashMap<Key, Cel> = m.iter().map(|(k, v)| (Key::from(k.as_str()), json_to_cel(v))).collect();
            Cel::Map(Map { map: Arc::new(map) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(rule: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [rule],
            "properties": {"size": {"type": "integer"}, "mode": {"type": "string"}}}}})
    }

    fn failures(rule: Value, obj: Value, old: Option<Value>) -> Vec<String> {
        let (rest, rules) = OptionalRules::split(&schema(rule));
        assert!(
            rest.pointer("/properties/spec/x-kubernetes-validations")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        );
        rules.validate(&obj, old.as_ref()).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn optional_selection_and_or_value() {
        let rule = json!({"rule": "self.?mode.orValue('fast') == 'fast'", "message": "mode must be fast"});
        assert!(failures(rule.clone(), json!({"spec": {"size": 1}}), None).is_empty());
        assert_eq!(
            failures(rule, json!({"spec": {"mode": "slow"}}), None),
            ["spec: Invalid value: \"object\": mode must be fast"]
        );
    }

    #[test]
    fn optional_old_self_is_none_on_create_and_the_old_value_on_update() {
        let rule = json!({"rule": "oldSelf.optMap(o, o.size <= self.size).orValue(true)", "optionalOldSelf": true,
            "message": "size may not shrink"});
        assert!(failures(rule.clone(), json!({"spec": {"size": 1}}), None).is_empty());
        assert!(failures(rule.clone(), json!({"spec": {"size": 3}}), Some(json!({"spec": {"size": 2}}))).is_empty());
        assert_eq!(failures(rule, json!({"spec": {"size": 1}}), Some(json!({"spec": {"size": 2}}))).len(), 1);
        let has = json!({"rule": "!oldSelf.hasValue() || oldSelf.value().mode == self.mode", "optionalOldSelf": true});
        assert!(failures(has.clone(), json!({"spec": {"mode": "a"}}), None).is_empty());
        assert_eq!(
            failures(has, json!({"spec": {"mode": "a"}}), Some(json!({"spec": {"mode": "b"}}))),
            ["spec: Invalid value: \"object\": failed rule: !oldSelf.hasValue() || oldSelf.value().mode == self.mode"]
        );
    }

    #[test]
    fn rules_kube_cel_handles_stay_with_it() {
        let (rest, rules) = OptionalRules::split(&schema(json!({"rule": "self.size >= 0"})));
        assert!(rules.is_empty());
        assert_eq!(rest, schema(json!({"rule": "self.size >= 0"})));
    }
}
