//! kubectl's table layout (cli-runtime's printers): no borders, upper-case headers, columns
//! left-aligned and separated by three spaces, no trailing spaces.
//!
//! NB: written by hand rather than with comfy-table: kubectl never wraps to the terminal
//! width and never pads the last column, and matching that byte for byte is simpler here.

use std::io::{self, Write};

/// What kubectl prints in an empty cell.
pub const NONE: &str = "<none>";

/// A string from the cluster made safe for a terminal: line breaks become spaces (cells
/// are single-line; a multi-line server message would break the layout) and other control
/// characters print as `\u{1b}` escapes, so a name or message cannot move the cursor,
/// change colours or retitle the terminal.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// A table before it is printed: what a verb's printer builds, and what the tables of
/// several contexts are merged from (`output::contexts`), so nothing is re-read from text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sheet {
    /// The upper-case headers.
    pub headers: Vec<&'static str>,
    /// One cell per header in each row (a shorter row leaves the last cells empty).
    pub rows: Vec<Vec<String>>,
}

/// Writes `headers` and `rows` as a kubectl table.
pub fn write(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    write_with(out, headers, rows, true)
}

/// Writes a kubectl table, its header line only when `show_headers` (`--no-headers`
/// drops it; the columns are then as wide as their cells, as kubectl's are).
pub fn write_with(
    out: &mut dyn Write,
    headers: &[&str],
    rows: &[Vec<String>],
    show_headers: bool,
) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| printable(c)).collect())
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|h| if show_headers { h.chars().count() } else { 0 })
        .collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let header_row = show_headers.then_some(&header_row);
    for row in header_row.into_iter().chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_padded_to_the_widest_cell_plus_three() {
        let mut out = Vec::new();
        super::write(
            &mut out,
            &["NAME", "PHASE"],
            &[
                vec!["a-long-name".into(), "Ready".into()],
                vec!["b".into(), "".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME          PHASE\na-long-name   Ready\nb\n"
        );
    }

    #[test]
    fn terminal_escapes_from_the_cluster_are_printed_not_obeyed() {
        assert_eq!(
            super::printable("a\u{1b}]0;owned\u{7}b"),
            "a\\u{1b}]0;owned\\u{7}b"
        );
        assert_eq!(super::printable("two\nlines"), "two lines");
        let mut out = Vec::new();
        super::write(&mut out, &["NAME"], &[vec!["x\u{1b}[2J".into()]]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }
}
