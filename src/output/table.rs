//! kubectl's table layout (cli-runtime's printers): no borders, upper-case headers, columns
//! left-aligned and separated by three spaces, no trailing spaces.
//!
//! NB: written by hand rather than with comfy-table: kubectl never wraps to the terminal
//! width and never pads the last column, and matching that byte for byte is simpler here.

use std::io::{self, Write};

/// What kubectl prints in an empty cell.
pub const NONE: &str = "<none>";

/// Writes `headers` and `rows` as a kubectl table.
pub fn write(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            // NB: cells are single-line; a multi-line server message would break the layout.
            let cell = cell.replace(['\n', '\r'], " ");
            line.push_str(&cell);
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
}
