//! Just enough CSV (RFC 4180) for the scorer's files: quoting on write, and parsing one line
//! with quoted fields on read (class maps, and the watch log read back after a restart).
//! Fields never hold line breaks here (photo paths and labels are one line).

/// `field` quoted if it holds a comma, quote, line break or leading/trailing space.
pub fn quote(field: &str) -> String {
    let needs =
        field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
    if needs {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Joins fields into one CSV line (without the line break).
pub fn join<S: AsRef<str>>(fields: &[S]) -> String {
    fields
        .iter()
        .map(|f| quote(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits one CSV line into fields, unquoting quoted ones.
pub fn parse_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                    match chars.peek() {
                        None | Some(',') => {}
                        Some(other) => {
                            return Err(format!(
                                "unexpected {other:?} after a closing quote (field {})",
                                fields.len() + 1
                            ));
                        }
                    }
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            c => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err(format!("unclosed quote in field {}", fields.len() + 1));
    }
    fields.push(cur);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let fields = ["plain", "a,b", "say \"hi\"", "", " padded", "x"];
        let line = join(&fields);
        assert_eq!(line, "plain,\"a,b\",\"say \"\"hi\"\"\",,\" padded\",x");
        assert_eq!(parse_line(&line).unwrap(), fields);
    }

    #[test]
    fn malformed_lines() {
        assert!(
            parse_line("\"open,b")
                .unwrap_err()
                .contains("unclosed quote")
        );
        assert!(
            parse_line("\"a\"b,c")
                .unwrap_err()
                .contains("after a closing quote")
        );
        assert_eq!(parse_line("a,").unwrap(), vec!["a", ""]);
        assert_eq!(parse_line("").unwrap(), vec![""]);
    }
}
