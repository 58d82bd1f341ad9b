//! The Terraform contract: fails when `terraform/` and the code disagree.
//!
//! `terraform validate` cannot run offline (no provider can be downloaded), so this reads the
//! `.tf` text with a small scanner (comments stripped, blocks matched by braces outside strings,
//! top-level `name = value` attributes) and checks what the binaries assume: the environment
//! variables each binary reads and requires, the metrics the code publishes, the resource names of
//! `core::names`, the queue's timing and redrive, the table's keys and indexes, the group's bounds,
//! IMDSv2 on the workers, and that each environment is a thin caller of `modules/farm` (the module
//! that wires the others), passing the same arguments with its own values.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use renderfleet_core::aws::TableLayout;
use renderfleet_core::message::{MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_SECS};
use renderfleet_core::names::{
    ACTIVE_INDEX, ACTIVE_INDEX_ATTRIBUTES, ENV_DIMENSION, METRICS_NAMESPACE, ResourceNames,
    TENANT_INDEX,
};

const ENVIRONMENTS: [&str; 2] = ["dev", "prod"];

// ---------------------------------------------------------------------------------------------
// Reading the repository

fn repo() -> PathBuf {
    renderfleet_e2e::repo_root()
}

fn read(rel: &str) -> String {
    let p = repo().join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Every file under `rel` whose name ends with one of `exts`, recursively, sorted.
fn files(rel: &str, exts: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != ".terraform") {
                    walk(&p, exts, out);
                }
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| exts.iter().any(|x| n.ends_with(x)))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join(rel), exts, &mut out);
    out.sort();
    out
}

/// A Terraform module's text: every `.tf` and `.tftpl` file, comments stripped.
fn module(name: &str) -> String {
    let dir = format!("terraform/modules/{name}");
    let fs = files(&dir, &[".tf", ".tftpl"]);
    assert!(!fs.is_empty(), "no Terraform files in {dir}");
    fs.iter()
        .map(|p| strip_comments(&fs::read_to_string(p).expect("readable")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn root_file(env: &str, file: &str) -> String {
    strip_comments(&read(&format!("terraform/environments/{env}/{file}")))
}

/// The arguments an environment passes to `module "farm"`: its values.
fn farm_call(env: &str) -> BTreeMap<String, String> {
    let main = root_file(env, "main.tf");
    attrs(
        block(&main, "module \"farm\"")
            .unwrap_or_else(|| panic!("environments/{env}/main.tf: no module \"farm\"")),
    )
}

/// Rust sources of a crate folder, concatenated.
fn rust_sources(dir: &str) -> String {
    let fs = files(dir, &[".rs"]);
    assert!(!fs.is_empty(), "no Rust sources in {dir}");
    fs.iter()
        .map(|p| fs::read_to_string(p).expect("readable"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// A small HCL scanner

/// Removes `#` and `//` comments (outside strings) and `/* */` blocks.
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let b: Vec<char> = src.chars().collect();
    let (mut i, mut in_str) = (0, false);
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c);
            if c == '\\' && i + 1 < b.len() {
                out.push(b[i + 1]);
                i += 2;
                continue;
            }
            if c == '"' || c == '\n' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
                i += 1;
            }
            '#' => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '/' if b.get(i + 1) == Some(&'/') => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '/' if b.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The body (between the braces) of the first block whose header starts with `header`, e.g.
/// `resource "aws_sqs_queue" "jobs"` or `resource "aws_sqs_queue"` (any label follows).
fn block<'a>(text: &'a str, header: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(pos) = text[from..].find(header) {
        let start = from + pos;
        let after = &text[start + header.len()..];
        let starts_word = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
        // Skip the remaining labels; then the opening brace must follow (not a longer name).
        let mut trimmed = after.trim_start();
        while let Some(label) = trimmed.strip_prefix('"') {
            match label.find('"') {
                Some(end) if !label[..end].contains('\n') => {
                    trimmed = label[end + 1..].trim_start()
                }
                _ => break,
            }
        }
        if starts_word && let Some(rest) = trimmed.strip_prefix('{') {
            let open = text.len() - rest.len();
            return Some(&text[open..open + matching_brace(rest)?]);
        }
        from = start + header.len();
    }
    None
}

/// Length of `s` up to the brace closing an already opened one.
fn matching_brace(s: &str) -> Option<usize> {
    let (mut depth, mut in_str, mut esc) = (1i32, false, false);
    for (i, c) in s.char_indices() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Every block body with this header.
fn blocks<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(b) = block(rest, header) {
        out.push(b);
        let end = b.as_ptr() as usize - rest.as_ptr() as usize + b.len();
        rest = &rest[end..];
    }
    out
}

/// The blocks of a file, in order, as (header, body): `module "farm"`, `terraform`, ... Panics on
/// anything else at the top level (HCL allows only blocks there).
fn top_level_blocks(text: &str) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let open = rest
            .find('{')
            .unwrap_or_else(|| panic!("expected a block: {}", &rest[..rest.len().min(80)]));
        let header = rest[..open].trim();
        assert!(
            !header.contains(['\n', '=']),
            "expected a block header, got {header}"
        );
        let len = matching_brace(&rest[open + 1..]).expect("closed block");
        out.push((header.to_owned(), &rest[open + 1..open + 1 + len]));
        rest = rest[open + 1 + len + 1..].trim_start();
    }
    out
}

/// The top-level attributes of a block body: `name = value` lines at depth 0 (a value spanning
/// lines is given as its first line).
fn attrs(body: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut depth = 0i32;
    for line in body.lines() {
        let t = line.trim();
        if depth == 0
            && let Some((k, v)) = t.split_once('=')
            && !v.starts_with('=')
            && !k.trim().is_empty()
            && k.trim()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            out.entry(k.trim().to_owned())
                .or_insert_with(|| v.trim().to_owned());
        }
        let mut in_str = false;
        let mut esc = false;
        for c in t.chars() {
            if in_str {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, '\\') => esc = true,
                    (false, '"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                '{' | '[' | '(' => depth += 1,
                '}' | ']' | ')' => depth -= 1,
                _ => {}
            }
        }
    }
    out
}

fn attr(body: &str, name: &str) -> String {
    attrs(body)
        .remove(name)
        .unwrap_or_else(|| panic!("no top-level `{name} = ...` in block:\n{body}"))
}

fn unquote(v: &str) -> String {
    v.trim()
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("expected a string literal, got {v}"))
        .to_owned()
}

/// The quoted strings of a list literal `["a", "b"]`.
fn string_list(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let end = after.find('"').expect("closed string");
        out.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    out
}

/// A module's `locals` value by name (the first `locals` block that has it).
fn local(module_text: &str, name: &str) -> String {
    blocks(module_text, "locals")
        .into_iter()
        .find_map(|b| attrs(b).remove(name))
        .unwrap_or_else(|| panic!("no local.{name}"))
}

/// `RENDERFLEET_*` names set as map keys (`NAME = value`) in Terraform text, with their values.
fn renderfleet_settings(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(pos) = rest.find("RENDERFLEET_") {
            let tail = &rest[pos..];
            let name: String = tail
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let after = tail[name.len()..].trim_start();
            if let Some(v) = after.strip_prefix('=')
                && !v.starts_with('=')
            {
                let v = v.trim();
                let end = v.find([',', '}']).unwrap_or(v.len());
                out.insert(name.clone(), v[..end].trim().to_owned());
            }
            rest = &tail[name.len()..];
        }
    }
    out
}

/// The value an environment gives the farm's `var.NAME`: the argument it passes to module "farm"
/// (looked up in its `locals` when it is `local.X`), else the farm variable's default.
fn resolve(env: &str, expr: &str) -> String {
    let Some(name) = expr.strip_prefix("var.") else {
        return expr.to_owned();
    };
    match farm_call(env).get(name) {
        Some(v) => match v.strip_prefix("local.") {
            Some(l) => local(&root_file(env, "main.tf"), l),
            None => v.clone(),
        },
        None => default_of(&module("farm"), name),
    }
}

/// A module variable's default.
fn default_of(module_text: &str, name: &str) -> String {
    let body = block(module_text, &format!("variable \"{name}\""))
        .unwrap_or_else(|| panic!("no variable {name}"));
    attr(body, "default")
}

fn number(v: &str) -> f64 {
    v.trim()
        .parse()
        .unwrap_or_else(|_| panic!("expected a number, got {v}"))
}

// ---------------------------------------------------------------------------------------------
// Reading the code

/// Quoted `"RENDERFLEET_*"` literals in Rust source: the variables a binary reads.
fn variables_read(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(pos) = rest.find("\"RENDERFLEET_") {
        let tail = &rest[pos + 1..];
        let end = tail.find('"').expect("closed string");
        let name = &tail[..end];
        if name.len() > "RENDERFLEET_".len()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            out.insert(name.to_owned());
        }
        rest = &tail[end..];
    }
    out
}

/// Variables a config.rs refuses to start without: `var: "X", message: "required: ...`, or
/// `("X", "required: ...` (core::names' lookup of the environment).
fn variables_required(config_rs: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = config_rs;
    while let Some(pos) = rest.find("\"RENDERFLEET_") {
        let tail = &rest[pos + 1..];
        let end = tail.find('"').expect("closed string");
        let after = tail[end + 1..].trim_start();
        if let Some(next) = after.strip_prefix(',')
            && next.trim_start().starts_with("\"required:")
        {
            out.insert(tail[..end].to_owned());
        }
        rest = &tail[end + 1..];
    }
    let mut rest = config_rs;
    while let Some(pos) = rest.find("var: \"RENDERFLEET_") {
        let tail = &rest[pos + 6..];
        let end = tail.find('"').expect("closed string");
        let name = tail[..end].to_owned();
        let next = &tail[end..tail.len().min(end + 160)];
        if let Some(m) = next.find("message: \"required")
            && next[m + "message: \"required".len()..].starts_with(':')
        {
            out.insert(name);
        }
        rest = &tail[end..];
    }
    out
}

/// Metrics the code publishes: name -> extra dimensions besides `Environment` (from
/// `MetricDatum::new("NAME", ...)` and a following `.extra = Some(("DIM", ...))`).
fn published_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for dir in ["lambdas/scaler/src", "render-agent/src", "job-server/src"] {
        let src = rust_sources(dir);
        let marker = "MetricDatum::new(";
        let mut rest = src.as_str();
        while let Some(pos) = rest.find(marker) {
            let tail = rest[pos + marker.len()..].trim_start();
            rest = &rest[pos + marker.len()..];
            let Some(q) = tail.strip_prefix('"') else {
                continue;
            };
            let name = q[..q.find('"').expect("closed")].to_owned();
            let dims = out.entry(name).or_default();
            let window = &q[..q.len().min(400)];
            let window = &window[..window.find(marker).unwrap_or(window.len())];
            if let Some(e) = window.find(".extra = Some((\"") {
                let d = &window[e + ".extra = Some((\"".len()..];
                dims.insert(d[..d.find('"').expect("closed")].to_owned());
            }
        }
    }
    assert!(!out.is_empty(), "found no published metrics");
    out
}

// ---------------------------------------------------------------------------------------------
// The checks

/// (Terraform module, crate sources, config file) for each binary Terraform runs.
const BINARIES: [(&str, &str, &str); 3] = [
    ("job_server", "job-server/src", "job-server/src/config.rs"),
    (
        "render_fleet",
        "render-agent/src",
        "render-agent/src/config.rs",
    ),
    (
        "scaler",
        "lambdas/scaler/src",
        "lambdas/scaler/src/config.rs",
    ),
];

/// What the agent's installer writes to agent.env itself (`echo "RENDERFLEET_X=...`).
fn installer_settings() -> BTreeSet<String> {
    read("render-agent/deploy/install.sh")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("echo \""))
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.to_owned())
        .filter(|k| k.starts_with("RENDERFLEET_"))
        .collect()
}

/// Where the binaries' shared settings (environment, bucket) are read.
const NAMES_RS: &str = "core/src/names.rs";
/// Every binary's edge (its log filter, `RENDERFLEET_LOG`) is read here.
const EDGE_RS: &str = "core/src/edge.rs";

#[test]
fn every_variable_terraform_sets_is_read_by_its_binary() {
    for (module_name, src, _) in BINARIES {
        let mut reads = variables_read(&rust_sources(src));
        // Every binary reads its resource names through core::names, its log filter through
        // core::edge.
        reads.extend(variables_read(&read(NAMES_RS)));
        reads.extend(variables_read(&read(EDGE_RS)));
        let mut set: BTreeSet<String> = renderfleet_settings(&module(module_name))
            .into_keys()
            .collect();
        if module_name == "render_fleet" {
            set.extend(installer_settings());
        }
        assert!(
            !set.is_empty(),
            "{module_name} sets no RENDERFLEET_ variable"
        );
        let unknown: Vec<_> = set.difference(&reads).collect();
        assert!(
            unknown.is_empty(),
            "terraform/modules/{module_name} sets {unknown:?}, which {src} never reads"
        );
    }
}

#[test]
fn every_variable_a_binary_requires_is_set() {
    for (module_name, _, config) in BINARIES {
        let mut required = variables_required(&read(config));
        required.extend(variables_required(&read(NAMES_RS)));
        assert!(
            required.contains("RENDERFLEET_ENV"),
            "{config}: the scanner found no required variable (looked for `message: \"required:`)"
        );
        let text = module(module_name);
        let mut set: BTreeSet<String> = renderfleet_settings(&text).into_keys().collect();
        if module_name == "render_fleet" {
            // The user data hands the environment to install.sh, which writes RENDERFLEET_ENV.
            assert!(
                text.contains("bash \"$deploy/install.sh\" \"${environment}\""),
                "the worker user data must run install.sh with the environment name"
            );
            assert_eq!(
                local(&text, "user_data").trim_end(),
                "templatefile(\"${path.module}/user_data.sh.tftpl\", {",
            );
            set.extend(installer_settings());
        }
        let missing: Vec<_> = required.difference(&set).collect();
        assert!(
            missing.is_empty(),
            "{config} requires {missing:?}, which terraform/modules/{module_name} does not set"
        );
    }
}

#[test]
fn group_scaler_and_alarm_settings_come_from_one_variable() {
    let fleet = module("render_fleet");
    let scaler = module("scaler");
    let obs = module("observability");
    let asg = block(&fleet, "resource \"aws_autoscaling_group\" \"workers\"").expect("the group");
    assert_eq!(attr(asg, "min_size"), "var.min_workers");
    assert_eq!(attr(asg, "max_size"), "var.max_workers");
    let fleet_env = renderfleet_settings(&fleet);
    let scaler_env = renderfleet_settings(&scaler);
    assert_eq!(fleet_env["RENDERFLEET_SLOTS"], "var.slots_per_worker");
    for (var, module_var) in [
        ("RENDERFLEET_MIN_WORKERS", "var.min_workers"),
        ("RENDERFLEET_MAX_WORKERS", "var.max_workers"),
        ("RENDERFLEET_SLOTS_PER_WORKER", "var.slots_per_worker"),
        ("RENDERFLEET_TARGET_WAIT_SECS", "var.target_wait_secs"),
    ] {
        assert_eq!(
            scaler_env.get(var).map(String::as_str),
            Some(module_var),
            "scaler {var}"
        );
    }
    let slo = block(
        &obs,
        "resource \"aws_cloudwatch_metric_alarm\" \"oldest_wait_over_slo\"",
    )
    .expect("the SLO alarm");
    assert_eq!(attr(slo, "threshold"), "var.target_wait_secs");

    let farm = module("farm");
    let m = |name: &str| {
        attrs(block(&farm, &format!("module \"{name}\"")).unwrap_or_else(|| panic!("{name}")))
    };
    let (fleet, scaler, obs) = (m("render_fleet"), m("scaler"), m("observability"));
    for arg in ["min_workers", "max_workers", "slots_per_worker"] {
        assert_eq!(
            fleet.get(arg),
            scaler.get(arg),
            "farm: render_fleet and scaler must get {arg} from one expression"
        );
        assert!(fleet.contains_key(arg), "farm: render_fleet.{arg} unset");
    }
    assert_eq!(
        scaler.get("target_wait_secs"),
        obs.get("target_wait_secs"),
        "farm: the scaler's wait target and the SLO alarm must be one value"
    );
    // Each value several modules share is validated once, in the farm variable that holds it.
    for name in [
        "min_workers",
        "max_workers",
        "slots_per_worker",
        "visibility_timeout_secs",
        "target_wait_secs",
        "log_retention_days",
    ] {
        let v = block(&farm, &format!("variable \"{name}\""))
            .unwrap_or_else(|| panic!("farm: no variable {name}"));
        assert!(v.contains("validation {"), "farm: {name} must be validated");
    }
    for env in ENVIRONMENTS {
        let min = number(&resolve(env, &fleet["min_workers"]));
        let max = number(&resolve(env, &fleet["max_workers"]));
        assert!(min <= max && max >= 1.0, "{env}: min {min}, max {max}");
    }
}

#[test]
fn dashboard_and_alarms_use_only_published_metrics() {
    let published = published_metrics();
    let obs = module("observability");
    assert_eq!(unquote(&local(&obs, "namespace")), METRICS_NAMESPACE);
    assert_eq!(unquote(&local(&obs, "env_dimension")), ENV_DIMENSION);
    for m in ["render_fleet", "scaler"] {
        let text = module(m);
        assert!(
            text.contains(&format!("values   = [\"{METRICS_NAMESPACE}\"]")),
            "{m}: PutMetricData must be limited to the {METRICS_NAMESPACE} namespace"
        );
    }

    // name -> dimensions besides Environment, as each use asks for them.
    let mut used: Vec<(String, BTreeSet<String>, &str)> = Vec::new();

    // Dashboard lines: [local.namespace, "Name", local.env_dimension, var.environment, {opts}]
    let marker = "[local.namespace, \"";
    let mut rest = obs.as_str();
    while let Some(pos) = rest.find(marker) {
        let tail = &rest[pos + marker.len()..];
        let name = tail[..tail.find('"').expect("closed")].to_owned();
        let after = &tail[name.len() + 1..];
        let dims = after
            .strip_prefix(", local.env_dimension, var.environment")
            .unwrap_or_else(|| {
                panic!("dashboard line for {name} must go on with the Environment dimension")
            });
        let next = dims.trim_start();
        assert!(
            next.starts_with(']') || next.starts_with(", {"),
            "dashboard line for {name} adds a dimension the code does not publish: {}",
            &next[..next.len().min(60)]
        );
        used.push((name, BTreeSet::new(), "dashboard"));
        rest = after;
    }

    // SEARCH expressions: {Namespace,Dim,...} MetricName="Name"
    let mut rest = obs.as_str();
    while let Some(pos) = rest.find("SEARCH('{") {
        let tail = &rest[pos + "SEARCH('{".len()..];
        let schema: Vec<&str> = tail[..tail.find("} MetricName").expect("closed schema")]
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(schema.first(), Some(&"${local.namespace}"));
        let dims: BTreeSet<String> = schema[1..]
            .iter()
            .filter(|d| **d != "${local.env_dimension}")
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            schema.len() - 1,
            dims.len() + 1,
            "a SEARCH must name the Environment dimension"
        );
        let m = tail.find("MetricName=\\\"").expect("MetricName in SEARCH") + 13;
        let name = tail[m..m + tail[m..].find('\\').expect("closed")].to_owned();
        used.push((name, dims, "SEARCH"));
        rest = tail;
    }

    // Alarms on our namespace: metric_name and exactly the Environment dimension.
    for alarm in blocks(&obs, "resource \"aws_cloudwatch_metric_alarm\"") {
        let a = attrs(alarm);
        if a.get("namespace").map(String::as_str) != Some("local.namespace") {
            assert!(
                a.get("namespace").is_none_or(|n| n.starts_with("\"AWS/")),
                "alarm namespace must be local.namespace or an AWS one: {a:?}"
            );
            continue;
        }
        assert_eq!(
            a.get("dimensions").map(String::as_str),
            Some("{ (local.env_dimension) = var.environment }"),
            "alarm on {:?} must select exactly the Environment dimension",
            a.get("metric_name")
        );
        used.push((unquote(&a["metric_name"]), BTreeSet::new(), "alarm"));
    }

    for (name, dims, what) in &used {
        let Some(published_dims) = published.get(name) else {
            panic!(
                "the {what} uses {METRICS_NAMESPACE}/{name}, which no binary publishes (published: {:?})",
                published.keys().collect::<Vec<_>>()
            );
        };
        assert_eq!(
            dims, published_dims,
            "the {what} asks {name} with dimensions Environment+{dims:?}; the code publishes Environment+{published_dims:?}"
        );
    }
    // What the issue asks the dashboard to show must be there.
    let names: BTreeSet<&str> = used.iter().map(|(n, _, _)| n.as_str()).collect();
    for needed in [
        "QueueVisible",
        "OldestWaitSeconds",
        "DesiredCapacity",
        "InServiceWorkers",
        "BootingWorkers",
        "BusyWorkers",
        "JobsSucceeded",
        "JobsFailed",
        "RenderSeconds",
        "ScalingDecision",
    ] {
        assert!(names.contains(needed), "the dashboard misses {needed}");
    }
}

#[test]
fn resource_names_follow_core_names() {
    let queue = module("queue");
    let storage = module("storage");
    let fleet = module("render_fleet");
    let scaler = module("scaler");
    let name_of = |text: &str, local_name: &str, env: &str| {
        unquote(&local(text, local_name)).replace("${var.environment}", env)
    };
    for env in ["dev", "prod", "qa-2"] {
        let n = ResourceNames::for_env(env).expect("valid");
        assert_eq!(name_of(&queue, "queue_name", env), n.queue);
        assert_eq!(name_of(&queue, "dlq_name", env), n.dlq);
        assert_eq!(name_of(&storage, "table_name", env), n.table);
        // Bucket names are global: the default carries the account, and the code accepts it.
        let bucket = name_of(&storage, "default_bucket_name", env).replace(
            "${data.aws_caller_identity.current.account_id}",
            "123456789012",
        );
        assert_eq!(bucket, format!("{}-123456789012", n.bucket));
        n.clone()
            .with_bucket(&bucket)
            .expect("a bucket name core accepts");
        assert_eq!(name_of(&fleet, "asg_name", env), n.asg);
        assert_eq!(name_of(&scaler, "asg_name", env), n.asg);
        assert_eq!(name_of(&fleet, "ssm_prefix", env), n.ssm_prefix);
        assert_eq!(name_of(&scaler, "ssm_prefix", env), n.ssm_prefix);
    }
    // The resources carry those names.
    for (text, header, key, local_name) in [
        (
            &queue,
            "resource \"aws_sqs_queue\" \"jobs\"",
            "name",
            "local.queue_name",
        ),
        (
            &queue,
            "resource \"aws_sqs_queue\" \"dlq\"",
            "name",
            "local.dlq_name",
        ),
        (
            &storage,
            "resource \"aws_s3_bucket\" \"media\"",
            "bucket",
            "local.bucket_name",
        ),
        (
            &storage,
            "resource \"aws_dynamodb_table\" \"jobs\"",
            "name",
            "local.table_name",
        ),
        (
            &fleet,
            "resource \"aws_autoscaling_group\" \"workers\"",
            "name",
            "local.asg_name",
        ),
    ] {
        let b = block(text, header).unwrap_or_else(|| panic!("{header}"));
        assert_eq!(attr(b, key), local_name, "{header}.{key}");
    }
    // Heartbeats: agents write under agents/, the scaler reads that path.
    let n = ResourceNames::for_env("dev").expect("valid");
    assert!(fleet.contains("parameter${local.ssm_prefix}/agents/*\""));
    assert!(scaler.contains("parameter${local.ssm_prefix}/agents\""));
    assert_eq!(
        format!("{}/agents/", n.ssm_prefix),
        n.agents_path(),
        "core's heartbeat path moved"
    );
    // The farm validates the environment name as ResourceNames::for_env does, and it is the one
    // caller of every module: each gets that validated value, under the module's own name.
    let farm = module("farm");
    let v = block(&farm, "variable \"environment\"").expect("farm: variable \"environment\"");
    assert!(
        v.contains("regex(\"^[a-z][a-z0-9-]{0,23}$\", var.environment)"),
        "farm: the environment validation must be ResourceNames::for_env's rule"
    );
    let calls: BTreeMap<String, BTreeMap<String, String>> = top_level_blocks(&farm)
        .into_iter()
        .filter_map(|(header, body)| Some((unquote(header.strip_prefix("module ")?), attrs(body))))
        .collect();
    assert_eq!(
        calls.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "kms",
            "network",
            "queue",
            "storage",
            "job_server",
            "render_fleet",
            "scaler",
            "observability",
        ]),
        "the farm must call each module once"
    );
    for (m, args) in &calls {
        assert_eq!(
            args.get("source"),
            Some(&format!("\"../{m}\"")),
            "farm: module {m}"
        );
        assert_eq!(
            args.get("environment").map(String::as_str),
            Some("var.environment"),
            "farm: module {m} must get the validated environment"
        );
        assert!(
            block(&module(m), "variable \"environment\"").is_some(),
            "{m}: no variable \"environment\""
        );
    }
    for env in ENVIRONMENTS {
        let value = unquote(&resolve(env, "var.environment"));
        assert_eq!(
            value, env,
            "environments/{env} must deploy environment {env}"
        );
        ResourceNames::for_env(&value).expect("a valid environment name");
    }
}

#[test]
fn jobs_table_has_the_keys_and_indexes_the_code_queries() {
    let storage = module("storage");
    let table = block(&storage, "resource \"aws_dynamodb_table\" \"jobs\"").expect("table");
    assert_eq!(
        unquote(&attr(table, "hash_key")),
        TableLayout::PARTITION_KEY
    );
    assert_eq!(unquote(&attr(table, "range_key")), TableLayout::SORT_KEY);
    let gsis: BTreeMap<String, BTreeMap<String, String>> = blocks(table, "global_secondary_index")
        .into_iter()
        .map(attrs)
        .map(|a| (unquote(&a["name"]), a))
        .collect();
    assert_eq!(gsis.len(), TableLayout::INDEXES.len(), "indexes: {gsis:?}");
    for (index, pk, sk) in TableLayout::INDEXES {
        let g = gsis
            .get(index)
            .unwrap_or_else(|| panic!("no index {index}"));
        assert_eq!(unquote(&g["hash_key"]), pk, "{index}");
        assert_eq!(unquote(&g["range_key"]), sk, "{index}");
    }
    assert_eq!(unquote(&gsis[TENANT_INDEX]["projection_type"]), "ALL");
    let active = &gsis[ACTIVE_INDEX];
    assert_eq!(unquote(&active["projection_type"]), "INCLUDE");
    assert_eq!(
        active["non_key_attributes"],
        "local.active_index_attributes"
    );
    assert_eq!(
        string_list(&local(&storage, "active_index_attributes")),
        ACTIVE_INDEX_ATTRIBUTES.to_vec(),
        "the active index must project core::names::ACTIVE_INDEX_ATTRIBUTES"
    );
    let dynamo = read("core/src/aws/dynamo.rs");
    let ttl = dynamo
        .split("TTL_ATTRIBUTE: &str = \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("TTL_ATTRIBUTE in dynamo.rs");
    let ttl_block = block(table, "ttl").expect("ttl block");
    assert_eq!(unquote(&attr(ttl_block, "attribute_name")), ttl);
}

#[test]
fn queue_timing_and_redrive_match_the_agent() {
    let queue = module("queue");
    let fleet = module("render_fleet");
    let scaler = module("scaler");
    let jobs = block(&queue, "resource \"aws_sqs_queue\" \"jobs\"").expect("jobs queue");
    assert_eq!(
        attr(jobs, "visibility_timeout_seconds"),
        "var.visibility_timeout_secs"
    );
    assert_eq!(
        renderfleet_settings(&fleet)["RENDERFLEET_VISIBILITY_SECS"],
        "var.visibility_timeout_secs"
    );
    assert!(
        jobs.contains("maxReceiveCount     = local.max_receive_count"),
        "the redrive policy must use local.max_receive_count"
    );
    assert_eq!(
        number(&local(&queue, "max_receive_count")),
        f64::from(MAX_RECEIVE_COUNT),
        "the DLQ's receive count must be core::message::MAX_RECEIVE_COUNT"
    );
    // The modules' defaults are the agent's default.
    for text in [&queue, &fleet] {
        assert_eq!(
            number(&default_of(text, "visibility_timeout_secs")),
            VISIBILITY_TIMEOUT_SECS as f64
        );
    }
    let farm = module("farm");
    let q = attrs(block(&farm, "module \"queue\"").expect("queue"));
    let f = attrs(block(&farm, "module \"render_fleet\"").expect("render_fleet"));
    assert_eq!(
        q.get("visibility_timeout_secs"),
        f.get("visibility_timeout_secs"),
        "farm: the queue and the agents must get the visibility timeout from one expression"
    );
    for env in ENVIRONMENTS {
        let v = number(&resolve(
            env,
            q.get("visibility_timeout_secs").expect("passed"),
        ));
        // render-agent/src/config.rs refuses less than 6 s.
        assert!(v >= 6.0, "{env}: visibility timeout {v} < 6");
    }
    // Draining: the unit waits longer than the grace, the termination hook longer still.
    let unit = read("render-agent/deploy/renderfleet-agent.service");
    let stop: f64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .map(number)
        .expect("TimeoutStopSec in the unit");
    let grace = number(&default_of(&fleet, "drain_grace_secs"));
    let hook = number(&default_of(&fleet, "termination_hook_timeout_secs"));
    assert_eq!(
        renderfleet_settings(&fleet)["RENDERFLEET_DRAIN_GRACE_SECS"],
        "var.drain_grace_secs"
    );
    assert!(
        grace < stop,
        "drain grace {grace} s must end before systemd's stop timeout {stop} s"
    );
    assert!(
        hook > stop,
        "the termination hook ({hook} s) must outlast the agent's stop ({stop} s)"
    );
    assert!(
        fleet.contains("<= 120"),
        "drain_grace_secs must be validated"
    );
    // Heartbeats: the scaler counts one stale only after several missed reports.
    let beat = number(&default_of(&fleet, "heartbeat_secs"));
    let stale = number(&default_of(&scaler, "heartbeat_stale_secs"));
    assert!(
        stale >= 3.0 * beat,
        "heartbeat_stale_secs {stale} must cover three heartbeats of {beat} s"
    );
    // The agent completes the termination hook the group has.
    let asg = block(&fleet, "resource \"aws_autoscaling_group\" \"workers\"").expect("group");
    assert_eq!(
        renderfleet_settings(&fleet)["RENDERFLEET_TERMINATION_HOOK"],
        "local.termination_hook"
    );
    let hooks: Vec<_> = blocks(asg, "initial_lifecycle_hook")
        .into_iter()
        .map(attrs)
        .collect();
    assert!(
        hooks.iter().any(|h| h["name"] == "local.termination_hook"
            && h["lifecycle_transition"] == "\"autoscaling:EC2_INSTANCE_TERMINATING\""
            && h["heartbeat_timeout"] == "var.termination_hook_timeout_secs"),
        "termination hook: {hooks:?}"
    );
    assert_eq!(
        renderfleet_settings(&fleet)["RENDERFLEET_LAUNCH_HOOK"],
        "local.launch_hook"
    );
    assert!(
        hooks.iter().any(|h| h["name"] == "local.launch_hook"
            && h["lifecycle_transition"] == "\"autoscaling:EC2_INSTANCE_LAUNCHING\""),
        "launch hook: {hooks:?}"
    );
    let lifecycle = attrs(block(asg, "lifecycle").expect("lifecycle block"));
    assert_eq!(
        lifecycle.get("ignore_changes").map(String::as_str),
        Some("[desired_capacity]"),
        "the scaler owns desired_capacity"
    );
}

#[test]
fn workers_require_imdsv2_and_encrypted_disks() {
    let fleet = module("render_fleet");
    let lt = block(&fleet, "resource \"aws_launch_template\" \"worker\"").expect("template");
    let md = attrs(block(lt, "metadata_options").expect("metadata_options"));
    assert_eq!(
        md.get("http_tokens").map(String::as_str),
        Some("\"required\"")
    );
    assert_eq!(
        md.get("http_endpoint").map(String::as_str),
        Some("\"enabled\"")
    );
    assert_eq!(
        md.get("http_put_response_hop_limit").map(String::as_str),
        Some("1")
    );
    let ebs = attrs(block(lt, "ebs").expect("root volume"));
    assert_eq!(ebs.get("encrypted").map(String::as_str), Some("true"));
    let ni = attrs(block(lt, "network_interfaces").expect("network_interfaces"));
    assert_eq!(
        ni.get("associate_public_ip_address").map(String::as_str),
        Some("false")
    );
    // The user data embeds the agent's own installer and unit.
    for f in ["install.sh", "renderfleet-agent.service"] {
        assert!(
            fleet.contains(&format!("/../../../render-agent/deploy/{f}\")")),
            "user data must embed render-agent/deploy/{f}"
        );
        assert!(repo().join("render-agent/deploy").join(f).is_file());
    }
}

/// `path` with `.` and `..` taken out, as the file system would read it.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn the_scaler_zip_defaults_to_what_build_lambda_makes() {
    let farm = module("farm");
    assert_eq!(default_of(&farm, "lambda_zip_path"), "null");
    let call = attrs(block(&farm, "module \"scaler\"").expect("module scaler"));
    let zip = &call["lambda_zip_path"];
    // path.root is the folder Terraform runs in: the environment's, not the farm's.
    let rel = zip
        .strip_prefix("coalesce(var.lambda_zip_path, \"${path.root}/")
        .and_then(|r| r.strip_suffix("\")"))
        .unwrap_or_else(|| panic!("lambda_zip_path: {zip}"));
    for env in ENVIRONMENTS {
        assert_eq!(
            lexical(&repo().join("terraform/environments").join(env).join(rel)),
            lexical(&repo().join("target/lambda/scaler/bootstrap.zip")),
            "{env}: the default zip must be where scripts/build-lambda leaves it"
        );
    }
}

#[test]
fn scaler_is_triggered_as_its_handler_expects() {
    let scaler = module("scaler");
    let f = attrs(block(&scaler, "resource \"aws_lambda_function\" \"this\"").expect("function"));
    assert!(
        !f.contains_key("reserved_concurrent_executions"),
        "young accounts cannot reserve concurrency; the tick lease keeps ticks apart"
    );
    assert_eq!(f["timeout"], "local.timeout_secs");
    assert_eq!(
        renderfleet_settings(&scaler)["RENDERFLEET_TICK_LEASE_SECS"],
        "local.timeout_secs",
        "the lease must outlast an invocation"
    );
    // The tick chain: the queue core::names expects, one message an invocation.
    assert!(scaler.contains("tick_queue_name = \"renderfleet-${var.environment}-scaler-ticks\""));
    assert_eq!(
        ResourceNames::for_env("dev").unwrap().tick_queue,
        "renderfleet-dev-scaler-ticks"
    );
    let esm = attrs(
        block(
            &scaler,
            "resource \"aws_lambda_event_source_mapping\" \"ticks\"",
        )
        .expect("mapping"),
    );
    assert_eq!(esm["batch_size"], "1");
    assert_eq!(f["handler"], "\"bootstrap\"");
    assert!(f["runtime"].starts_with("\"provided."));
    let schedule =
        attrs(block(&scaler, "resource \"aws_cloudwatch_event_rule\" \"tick\"").unwrap());
    assert_eq!(schedule["schedule_expression"], "\"rate(1 minute)\"");
    let rule = block(
        &scaler,
        "resource \"aws_cloudwatch_event_rule\" \"lifecycle\"",
    )
    .unwrap();
    let event_rs = read("lambdas/scaler/src/event.rs");
    assert!(rule.contains("source      = [\"aws.autoscaling\"]"));
    assert!(event_rs.contains("Some(\"aws.autoscaling\")"));
    assert!(event_rs.contains("d.ends_with(\"Lifecycle Action\")"));
    let types = rule
        .lines()
        .find(|l| l.trim_start().starts_with("detail-type"))
        .map(string_list)
        .expect("detail-type");
    assert_eq!(
        types,
        [
            "EC2 Instance-launch Lifecycle Action",
            "EC2 Instance-terminate Lifecycle Action"
        ]
    );
    assert!(rule.contains("AutoScalingGroupName = [local.asg_name]"));
}

/// The farm module's variables: name -> whether it has a default.
fn farm_variables() -> BTreeMap<String, bool> {
    let text = module("farm");
    let vars: BTreeMap<String, bool> = top_level_blocks(&text)
        .into_iter()
        .filter_map(|(header, body)| {
            let name = header.strip_prefix("variable ")?;
            Some((unquote(name), attrs(body).contains_key("default")))
        })
        .collect();
    assert!(!vars.is_empty(), "modules/farm declares no variable");
    vars
}

/// The attributes of the map `NAME = { ... }` in a block body.
fn map_attr(body: &str, name: &str) -> BTreeMap<String, String> {
    let key = format!("{name} = {{");
    let open = body
        .find(&key)
        .unwrap_or_else(|| panic!("no `{key}` in:\n{body}"))
        + key.len();
    attrs(&body[open..open + matching_brace(&body[open..]).expect("closed map")])
}

/// Each environment is `module "farm"` called with values, the provider, outputs of the farm,
/// versions and the backend: nothing that could make dev and prod run different code.
#[test]
fn environments_are_thin_callers_of_the_farm() {
    let farm_vars = farm_variables();
    let mut passed = BTreeMap::new();
    for env in ENVIRONMENTS {
        let dir = format!("terraform/environments/{env}");
        let names: BTreeSet<String> = files(&dir, &[".tf", ".tf.json", ".tfvars", ".tfvars.json"])
            .iter()
            .map(|p| {
                p.file_name()
                    .expect("a file")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            BTreeSet::from(
                ["backend.tf", "main.tf", "outputs.tf", "versions.tf"].map(String::from)
            ),
            "{dir}: the values belong in main.tf's module \"farm\", the code in modules/farm"
        );
        let kinds = |file: &str| -> Vec<String> {
            top_level_blocks(&root_file(env, file))
                .into_iter()
                .map(|(h, _)| h)
                .collect()
        };
        assert_eq!(kinds("versions.tf"), ["terraform"], "{dir}/versions.tf");
        assert_eq!(kinds("backend.tf"), ["terraform"], "{dir}/backend.tf");
        let mut main_kinds = kinds("main.tf");
        main_kinds.sort();
        assert_eq!(
            main_kinds,
            ["locals", "module \"farm\"", "provider \"aws\""],
            "{dir}/main.tf: only the provider, its locals and module \"farm\""
        );
        let outputs = root_file(env, "outputs.tf");
        for (header, body) in top_level_blocks(&outputs) {
            assert!(header.starts_with("output "), "{dir}/outputs.tf: {header}");
            assert!(
                attr(body, "value").starts_with("module.farm"),
                "{dir}/outputs.tf: {header} must export the farm's outputs"
            );
        }

        // The exact provider release, in the environment (the farm asks for a range).
        let versions = root_file(env, "versions.tf");
        let aws = map_attr(
            block(&versions, "required_providers").expect("required_providers"),
            "aws",
        );
        assert_eq!(
            aws.get("source").map(String::as_str),
            Some("\"hashicorp/aws\"")
        );
        assert_eq!(aws.get("version").map(String::as_str), Some("\"5.100.0\""));

        // The provider and the farm take the environment and the region from one place.
        let main = root_file(env, "main.tf");
        let locals = attrs(block(&main, "locals").expect("locals"));
        assert_eq!(
            locals.keys().collect::<Vec<_>>(),
            ["environment", "region"],
            "{dir}/main.tf: locals are for what the provider and the farm share"
        );
        let provider = block(&main, "provider \"aws\"").expect("provider");
        let call = farm_call(env);
        assert_eq!(
            call.get("source").map(String::as_str),
            Some("\"../../modules/farm\"")
        );
        assert_eq!(
            attrs(provider).get("region"),
            call.get("region"),
            "{dir}: region"
        );
        let tags = map_attr(
            block(provider, "default_tags").expect("default_tags"),
            "tags",
        );
        assert_eq!(
            tags.get("Environment"),
            call.get("environment"),
            "{dir}: tags"
        );

        // Every argument is a farm variable; every farm variable without a default is given.
        let args: BTreeSet<String> = call.into_keys().filter(|k| k != "source").collect();
        let unknown: Vec<_> = args
            .iter()
            .filter(|a| !farm_vars.contains_key(*a))
            .collect();
        assert!(
            unknown.is_empty(),
            "{dir} passes {unknown:?}, which modules/farm does not declare"
        );
        let missing: Vec<_> = farm_vars
            .iter()
            .filter(|(name, has_default)| !**has_default && !args.contains(*name))
            .collect();
        assert!(missing.is_empty(), "{dir} does not pass {missing:?}");
        passed.insert(env, args);
    }
    assert_eq!(
        passed["dev"], passed["prod"],
        "dev and prod must pass module \"farm\" the same arguments (with their own values)"
    );
    for file in ["versions.tf", "outputs.tf"] {
        assert_eq!(
            read(&format!("terraform/environments/dev/{file}")),
            read(&format!("terraform/environments/prod/{file}")),
            "environments/dev/{file} and environments/prod/{file} must be the same"
        );
    }
    assert_eq!(
        block(&root_file("dev", "main.tf"), "provider \"aws\""),
        block(&root_file("prod", "main.tf"), "provider \"aws\""),
        "the environments configure the provider alike"
    );
    assert_eq!(
        read("terraform/environments/dev/backend.tf").replace("/dev/", "/prod/"),
        read("terraform/environments/prod/backend.tf"),
        "the backends differ only in the state key"
    );
    for env in ENVIRONMENTS {
        let backend = root_file(env, "backend.tf");
        let b = attrs(block(&backend, "backend \"s3\"").expect("an S3 backend"));
        assert_eq!(b.get("use_lockfile").map(String::as_str), Some("true"));
        assert_eq!(b.get("encrypt").map(String::as_str), Some("true"));
        assert!(b["key"].contains(&format!("/{env}/")));
    }
}
