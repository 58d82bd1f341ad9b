//! Job traces: the CSV format users replay, and the jobs the scenarios generate.

use serde::Serialize;

/// Milliseconds since the start of the trace.
pub type Millis = i64;

/// One render job of a trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Job {
    /// When it was submitted.
    pub submitted: Millis,
    /// How long it renders on a slot.
    pub render: Millis,
    /// Higher runs first among waiting jobs; 0 unless the trace says otherwise.
    pub priority: i32,
}

/// A trace line or header the parser cannot use, named by its line and column (both from 1).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TraceError {
    #[error("line {line}, column {column} ({name}): {message}")]
    Field {
        line: usize,
        column: usize,
        name: String,
        message: String,
    },
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("the trace has no jobs")]
    Empty,
}

/// Converts seconds to milliseconds, rounding to the nearest.
pub fn ms(secs: f64) -> Millis {
    (secs * 1000.0).round() as Millis
}

/// Converts milliseconds to seconds.
pub fn secs(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

const COLUMNS: [&str; 3] = ["submitted_at", "render_seconds", "priority"];

/// Parses a trace CSV (see docs/SIMULATOR.md): a header naming `submitted_at` and
/// `render_seconds` (and optionally `priority`) in any order, then one job per line. Blank lines
/// and lines starting with `#` are skipped. The jobs come back ordered by submission time, ties
/// in file order.
pub fn parse_csv(text: &str) -> Result<Vec<Job>, TraceError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let (header_line, header) = lines.next().ok_or(TraceError::Empty)?;
    let columns = Columns::of_header(header_line, header)?;
    let mut jobs = lines
        .map(|(line, row)| columns.job(line, row))
        .collect::<Result<Vec<_>, _>>()?;
    if jobs.is_empty() {
        return Err(TraceError::Empty);
    }
    jobs.sort_by_key(|j| j.submitted);
    Ok(jobs)
}

/// Where each known column sits in a row (indexed as [`COLUMNS`]), and how many fields a row has.
struct Columns {
    at: [Option<usize>; 3],
    width: usize,
}

impl Columns {
    /// Reads the header: known columns, each at most once, the first two required.
    fn of_header(line: usize, header: &str) -> Result<Self, TraceError> {
        let mut at = [None::<usize>; 3];
        for (i, name) in header.split(',').map(str::trim).enumerate() {
            let err = |message: String| TraceError::Field {
                line,
                column: i + 1,
                name: name.into(),
                message,
            };
            match COLUMNS.iter().position(|c| *c == name) {
                Some(k) if at[k].is_some() => return Err(err("column named twice".into())),
                Some(k) => at[k] = Some(i),
                None => {
                    return Err(err(format!(
                        "unknown column; expected one of {}",
                        COLUMNS.join(", ")
                    )));
                }
            }
        }
        for (k, name) in COLUMNS.iter().enumerate().take(2) {
            if at[k].is_none() {
                return Err(TraceError::Line {
                    line,
                    message: format!(
                        "the header must name the {name} column (found {:?})",
                        header.trim()
                    ),
                });
            }
        }
        let width = at.iter().flatten().count();
        Ok(Self { at, width })
    }

    /// One job from the row on `line`.
    fn job(&self, line: usize, row: &str) -> Result<Job, TraceError> {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        if fields.len() != self.width {
            return Err(TraceError::Line {
                line,
                message: format!("expected {} fields, found {}", self.width, fields.len()),
            });
        }
        let field = |k: usize| self.at[k].map(|i| (i, fields[i]));
        let err = |k: usize, i: usize, message: String| TraceError::Field {
            line,
            column: i + 1,
            name: COLUMNS[k].into(),
            message,
        };
        let seconds = |k: usize, positive: bool| -> Result<f64, TraceError> {
            let (i, v) = field(k).expect("required column present");
            let x: f64 = v
                .parse()
                .map_err(|_| err(k, i, format!("cannot read {v:?} as seconds")))?;
            if !x.is_finite() || x < 0.0 || (positive && x == 0.0) {
                let want = if positive { "above 0" } else { "at least 0" };
                return Err(err(k, i, format!("{v} seconds must be {want}")));
            }
            Ok(x)
        };
        let submitted = seconds(0, false)?;
        let render = seconds(1, true)?;
        let priority = match field(2) {
            None => 0,
            Some((_, "")) => 0,
            Some((i, v)) => v
                .parse()
                .map_err(|_| err(2, i, format!("cannot read {v:?} as a whole number")))?,
        };
        Ok(Job {
            submitted: ms(submitted),
            render: ms(render).max(1),
            priority,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_columns_in_any_order_with_comments_and_optional_priority() {
        let jobs = parse_csv(
            "# exported 2026-01-01\nrender_seconds,submitted_at,priority\n30,5,\n12.5,1.25,3\n\n",
        )
        .unwrap();
        assert_eq!(
            jobs,
            vec![
                Job {
                    submitted: 1250,
                    render: 12500,
                    priority: 3
                },
                Job {
                    submitted: 5000,
                    render: 30000,
                    priority: 0
                },
            ]
        );
        let jobs = parse_csv("submitted_at,render_seconds\n0,60\n").unwrap();
        assert_eq!(jobs.len(), 1);
    }

    #[test]
    fn parse_errors_name_the_line_and_column() {
        let e = parse_csv("submitted_at,render_seconds\n0,60\n10,abc\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3, column 2 (render_seconds): cannot read \"abc\" as seconds"
        );
        let e = parse_csv("render_seconds,submitted_at\n60,-1\n").unwrap_err();
        assert!(
            matches!(
                e,
                TraceError::Field {
                    line: 2,
                    column: 2,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_csv("submitted_at,render_seconds,priority\n0,0,1\n").unwrap_err();
        assert!(e.to_string().starts_with("line 2, column 2"), "{e}");
        let e = parse_csv("submitted_at,render_seconds,priority\n0,5,high\n").unwrap_err();
        assert!(
            e.to_string().starts_with("line 2, column 3 (priority)"),
            "{e}"
        );
        let e = parse_csv("submitted_at,secs\n").unwrap_err();
        assert_eq!(
            e,
            TraceError::Field {
                line: 1,
                column: 2,
                name: "secs".into(),
                message: "unknown column; expected one of submitted_at, render_seconds, priority"
                    .into()
            }
        );
        let e = parse_csv("submitted_at,render_seconds\n1,2,3\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: expected 2 fields, found 3");
        assert_eq!(
            parse_csv("submitted_at,render_seconds\n"),
            Err(TraceError::Empty)
        );
        let e = parse_csv("submitted_at\n1\n").unwrap_err();
        assert!(e.to_string().contains("render_seconds"), "{e}");
    }
}
