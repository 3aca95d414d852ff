//! What the commands print on stdout: a table a person reads (aligned columns, the fields that
//! matter), or with `-o json` the API's JSON for scripts. Progress and errors go to stderr.

use std::io::Write;

use serde::Serialize;

use super::error::CliError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns.
    #[default]
    Table,
    /// The API's JSON (a list: the items of every page, in one array).
    Json,
}

/// Rows under a header, or (`details`) labelled fields of one thing.
pub struct Table {
    header: Option<Vec<String>>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: Some(header.iter().map(|h| h.to_string()).collect()),
            rows: Vec::new(),
        }
    }

    /// One thing's fields, a label and a value a line.
    pub fn details(fields: &[(&str, String)]) -> Self {
        Self {
            header: None,
            rows: fields
                .iter()
                .map(|(label, value)| vec![format!("{label}:"), value.clone()])
                .collect(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let lines: Vec<&Vec<String>> = self.header.iter().chain(&self.rows).collect();
        let columns = lines.iter().map(|l| l.len()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                lines
                    .iter()
                    .filter_map(|l| l.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        for line in lines {
            let mut rendered = String::new();
            for (c, cell) in line.iter().enumerate() {
                if c + 1 < line.len() {
                    let pad = widths[c] - cell.chars().count();
                    rendered.push_str(cell);
                    rendered.extend(std::iter::repeat_n(' ', pad + 2));
                } else {
                    rendered.push_str(cell);
                }
            }
            text.push_str(rendered.trim_end());
            text.push('\n');
        }
        text
    }
}

/// An optional value as a cell.
pub fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

/// A time as a cell (UTC, to the second).
pub fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Print `text` on stdout; a reader that went away (`| head`) is no error.
pub fn emit(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Other(format!("cannot write the output: {e}")))
        }
        _ => Ok(()),
    }
}

/// Pretty JSON of `value`, with a final newline.
pub fn json_text(value: &impl Serialize) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|e| CliError::Other(format!("cannot print the answer as JSON: {e}")))
}

/// Show `value`: as `table` makes it, or its JSON.
pub fn show<T: Serialize + ?Sized>(
    output: Output,
    value: &T,
    table: impl FnOnce(&T) -> Table,
) -> Result<(), CliError> {
    match output {
        Output::Json => emit(&json_text(&value)?),
        Output::Table => emit(&table(value).render()),
    }
}

/// What a command that changed something prints: a line saying what it did, or the API's
/// answer.
pub fn done(output: Output, answer: &impl Serialize, line: &str) -> Result<(), CliError> {
    match output {
        Output::Json => emit(&json_text(answer)?),
        Output::Table => emit(&format!("{line}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_lines_not_padded_at_the_end() {
        let mut table = Table::new(&["ID", "NAME", "ROLE"]);
        table.row(vec![
            "org-1".into(),
            "Acme Corporation".into(),
            "admin".into(),
        ]);
        table.row(vec!["org-22".into(), "B".into(), "member".into()]);
        assert_eq!(
            table.render(),
            "ID      NAME              ROLE\n\
             org-1   Acme Corporation  admin\n\
             org-22  B                 member\n"
        );
    }

    #[test]
    fn details_are_labelled_lines() {
        let table = Table::details(&[("ID", "ws-1".into()), ("STATUS", "Ready".into())]);
        assert_eq!(table.render(), "ID:      ws-1\nSTATUS:  Ready\n");
    }
}
