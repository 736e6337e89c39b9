//! How the views look in a terminal: the tree as a table with box-drawing guides, ages as kubectl
//! prints them, colour only when asked for (the caller decides: a terminal, and no NO_COLOR).

use std::fmt::Write;

use anstyle::{AnsiColor, Style};
use k8s_openapi::jiff::Timestamp;

use super::node::{Health, Node};
use super::tree::{Forest, Tree};

/// How to draw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Look {
    pub colour: bool,
    /// Print ages relative to this instant; no AGE column without it.
    pub now: Option<Timestamp>,
    /// A NAMESPACE column (for `--all-namespaces`).
    pub namespaces: bool,
}

impl Look {
    /// `text` in the colour of `health`.
    pub fn health(&self, health: Health, text: &str) -> String {
        let colour = match health {
            Health::Ready => Some(AnsiColor::Green),
            Health::Progressing => Some(AnsiColor::Yellow),
            Health::Failing => Some(AnsiColor::Red),
            Health::None => None,
        };
        self.paint(Style::new().fg_color(colour.map(Into::into)), text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dimmed(), text)
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.colour && style != Style::new() {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }
}

/// kubectl's age: `45s`, `5m30s`, `3h`, `2d4h`, `400d`, `3y20d`.
pub fn age(created: Timestamp, now: Timestamp) -> String {
    let seconds = now.as_second().saturating_sub(created.as_second()).max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86400);
    let with = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 { format!("{big}{unit}") } else { format!("{big}{unit}{small}{small_unit}") }
    };
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => with(minutes, "m", s % 60, "s"),
        s if s < 3 * 3600 => format!("{minutes}m"),
        s if s < 8 * 3600 => with(hours, "h", minutes % 60, "m"),
        s if s < 48 * 3600 => format!("{hours}h"),
        s if s < 8 * 86400 => with(days, "d", hours % 24, "h"),
        s if s < 2 * 365 * 86400 => format!("{days}d"),
        s if s < 8 * 365 * 86400 => with(days / 365, "y", days % 365, "d"),
        _ => format!("{}y", days / 365),
    }
}

/// One line of the table before padding.
struct Row<'a> {
    guide: String,
    node: &'a Node,
    /// The guide of lines under this one (its message).
    continuation: String,
    note: Option<String>,
}

/// The forest as a table: NAME (with guides), READY, STATUS, AGE; under each object that is not
/// ready, what it waits on or why it fails; then the orphans.
pub fn render(forest: &Forest, look: &Look) -> String {
    let mut rows = Vec::new();
    for tree in &forest.items {
        collect(tree, String::new(), String::new(), &mut rows);
    }
    let first_orphan = rows.len();
    for orphan in &forest.orphans {
        rows.push(Row {
            guide: String::new(),
            node: &orphan.node,
            continuation: String::new(),
            note: Some(orphan.orphaned.clone()),
        });
    }
    let name_width = rows.iter().map(|r| width(&r.guide) + r.node.reference().len()).max().unwrap_or(0).max(4);
    let ready_width = rows.iter().map(|r| r.node.ready.as_deref().unwrap_or("-").len()).max().unwrap_or(0).max(5);
    let status_width = rows.iter().map(|r| r.node.status.len()).max().unwrap_or(0).max(6);
    let ns_width = rows.iter().map(|r| r.node.namespace.len()).max().unwrap_or(0).max(9);
    let mut out = String::new();
    let mut header = String::new();
    if look.namespaces {
        header.push_str(&format!("{:ns_width$}  ", "NAMESPACE"));
    }
    header.push_str(&format!("{:name_width$}  {:ready_width$}  {:status_width$}", "NAME", "READY", "STATUS"));
    if look.now.is_some() {
        header.push_str("  AGE");
    }
    let _ = writeln!(out, "{}", look.bold(header.trim_end()));
    for (index, row) in rows.iter().enumerate() {
        if index == first_orphan {
            let _ = writeln!(
                out,
                "{}",
                look.health(Health::Failing, "ORPHANS: the operator's labels, but their owner is gone")
            );
        }
        write_row(&mut out, row, look, [ns_width, name_width, ready_width, status_width]);
    }
    out
}

fn write_row(
    out: &mut String,
    row: &Row<'_>,
    look: &Look,
    [ns_width, name_width, ready_width, status_width]: [usize; 4],
) {
    let node = row.node;
    let mut line = String::new();
    if look.namespaces {
        line.push_str(&format!("{:ns_width$}  ", node.namespace));
    }
    let name = format!("{}{}", row.guide, node.reference());
    let pad = name_width.saturating_sub(width(&name));
    line.push_str(&format!("{name}{}  {:ready_width$}  ", " ".repeat(pad), node.ready.as_deref().unwrap_or("-")));
    let status = format!("{:status_width$}", node.status);
    line.push_str(&look.health(node.health, &status));
    if let (Some(now), Some(created)) = (look.now, &node.creation_timestamp) {
        line.push_str(&format!("  {}", age(created.0, now)));
    }
    let _ = writeln!(out, "{}", line.trim_end());
    let indent = if look.namespaces { " ".repeat(ns_width + 2) } else { String::new() };
    for note in row.note.iter().chain(explanation(node).as_ref()) {
        let _ = writeln!(out, "{indent}{}   {}", row.continuation, look.dim(note));
    }
}

/// What a node that is not ready waits on or fails with: `Reason: message`.
pub fn explanation(node: &Node) -> Option<String> {
    if node.is_ready() {
        return None;
    }
    match (&node.reason, &node.message) {
        (Some(reason), Some(message)) => Some(format!("{reason}: {message}")),
        (Some(only), None) | (None, Some(only)) => Some(only.clone()),
        (None, None) => None,
    }
}

fn collect<'a>(tree: &'a Tree, guide: String, continuation: String, rows: &mut Vec<Row<'a>>) {
    let last = tree.children.len().saturating_sub(1);
    let below = if tree.children.is_empty() { continuation.clone() } else { format!("{continuation}│") };
    rows.push(Row { guide, node: &tree.node, continuation: below, note: None });
    for (i, child) in tree.children.iter().enumerate() {
        let (branch, next) = if i == last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
        collect(child, format!("{continuation}{branch}"), format!("{continuation}{next}"), rows);
    }
}

/// Display width: the guides' box-drawing characters are one column each.
fn width(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("time")
    }

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        let cases = [
            (45, "45s"),
            (119, "119s"),
            (330, "5m30s"),
            (600, "10m"),
            (7200, "120m"),
            (4 * 3600 + 60 * 5, "4h5m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (40 * 86400, "40d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(age(at(0), at(seconds)), expected, "{seconds} s");
        }
    }
}
