//! The confusion matrix as a small hand-written SVG: class names on both axes, the count in
//! every cell, cells coloured by the row-normalised value (the share of that true class). Plain
//! text and integer coordinates, so the file is byte-identical for the same matrix.

/// XML-escapes text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// White → blue by `v` in [0, 1].
fn fill(v: f64) -> String {
    let v = v.clamp(0.0, 1.0);
    let (r0, g0, b0) = (255.0, 255.0, 255.0);
    let (r1, g1, b1) = (31.0, 92.0, 160.0);
    let mix = |a: f64, b: f64| (a + (b - a) * v).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(r0, r1), mix(g0, g1), mix(b0, b1))
}

/// Renders `matrix` (rows = true class, columns = predicted) with `title` above it.
pub fn render(classes: &[String], matrix: &[Vec<u64>], title: &str) -> String {
    let n = classes.len();
    let cell = 64usize;
    let char_w = 7usize;
    let longest = classes.iter().map(|c| c.chars().count()).max().unwrap_or(1);
    let label = longest * char_w + 16;
    let left = label + 28;
    let top = 48 + label;
    let width = (left + n * cell + 24).max(title.chars().count() * char_w + 24);
    let height = top + n * cell + 40;
    let mut s = String::new();
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    ));
    s.push_str(&format!(
        "<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n\
         <text x=\"12\" y=\"22\" font-size=\"14\">{}</text>\n",
        esc(title)
    ));
    // Axis titles.
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">predicted class</text>\n",
        left + n * cell / 2,
        top + n * cell + 28
    ));
    s.push_str(&format!(
        "<text transform=\"translate(16,{}) rotate(-90)\" text-anchor=\"middle\">true class</text>\n",
        top + n * cell / 2
    ));
    for (i, name) in classes.iter().enumerate() {
        // Row label (true class), right-aligned next to the row.
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>\n",
            left - 8,
            top + i * cell + cell / 2,
            esc(name)
        ));
        // Column label (predicted class), rotated above the column.
        s.push_str(&format!(
            "<text transform=\"translate({},{}) rotate(-60)\">{}</text>\n",
            left + i * cell + cell / 2,
            top - 8,
            esc(name)
        ));
    }
    for (t, row) in matrix.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (p, &count) in row.iter().enumerate() {
            let v = if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            };
            let (x, y) = (left + p * cell, top + t * cell);
            let ink = if v > 0.5 { "white" } else { "black" };
            let stroke = if t == p { "#333333" } else { "#cccccc" };
            s.push_str(&format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"{}\" \
                 stroke=\"{stroke}\"/>\n",
                fill(v)
            ));
            s.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{ink}\" font-size=\"14\">{count}</text>\n",
                x + cell / 2,
                y + cell / 2
            ));
            s.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{ink}\" font-size=\"10\">{:.0}%</text>\n",
                x + cell / 2,
                y + cell / 2 + 16,
                100.0 * v
            ));
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_names_and_colours() {
        let classes = vec!["fine".to_string(), "a<b".to_string()];
        let m = vec![vec![3, 1], vec![0, 0]];
        let svg = render(&classes, &m, "val tiles");
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(svg.contains(">fine</text>") && svg.contains(">a&lt;b</text>"));
        // Every count in a cell, with its row share.
        assert!(svg.contains(">3</text>") && svg.contains(">75%</text>"));
        assert!(svg.contains(">1</text>") && svg.contains(">25%</text>"));
        assert_eq!(svg.matches(">0</text>").count(), 2);
        // 75 % is darker than 25 %; an empty row stays white.
        assert!(svg.contains(&format!("fill=\"{}\"", fill(0.75))));
        assert_eq!(fill(0.0), "#ffffff");
        assert_eq!(render(&classes, &m, "val tiles"), svg, "deterministic");
    }
}
