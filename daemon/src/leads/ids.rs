//! The lead ids of an archive run: read from text, checked before anything is sent with the
//! platform's own rules and messages (seed 001), and cut into batches the endpoint accepts.

/// The most ids the endpoint takes in one request ("Limited to 500 leads per request").
pub const MAX_BATCH: usize = 500;

/// How many offending values an error lists before "and N more".
const SHOWN: usize = 10;

/// Why the ids cannot be sent. The first words are the platform's own message for the same
/// mistake, so what the agent's IT reads here is what the server would have said.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdsError {
    #[error("lead_ids must only contain integer values: {}", shown(.0))]
    NotIntegers(Vec<String>),
    #[error("lead_ids must contain atleast 1 value")]
    Empty,
    #[error("lead_ids cannot contain duplicate values: {}", shown(.0))]
    Duplicates(Vec<String>),
}

fn shown(values: &[String]) -> String {
    let mut text = values
        .iter()
        .take(SHOWN)
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if values.len() > SHOWN {
        text.push_str(&format!(" and {} more", values.len() - SHOWN));
    }
    text
}

/// Ids separated by commas, spaces or new lines (a CSV column, a file of one id per line, or
/// `--ids 1,2,3`), in the order given; checked as the platform checks them: integers only, at
/// least one, no duplicates — across the whole run, since batches are sent one by one and a
/// duplicate in a later batch would find its lead already archived and deleted.
pub fn parse(text: &str) -> Result<Vec<i64>, IdsError> {
    let (mut ids, mut bad): (Vec<i64>, Vec<String>) = (Vec::new(), Vec::new());
    for token in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        // Only plain decimal digits (an optional minus): not "1.0", "+1", "1e3" or "0x10".
        let plain = token.strip_prefix('-').unwrap_or(token);
        match (plain.bytes().all(|b| b.is_ascii_digit()), token.parse()) {
            (true, Ok(id)) => ids.push(id),
            _ => bad.push(token.to_owned()),
        }
    }
    if !bad.is_empty() {
        return Err(IdsError::NotIntegers(bad));
    }
    if ids.is_empty() {
        return Err(IdsError::Empty);
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    let (mut repeated, mut duplicates) = (std::collections::HashSet::new(), Vec::new());
    for id in &ids {
        if !seen.insert(*id) && repeated.insert(*id) {
            duplicates.push(id.to_string());
        }
    }
    if !duplicates.is_empty() {
        return Err(IdsError::Duplicates(duplicates));
    }
    Ok(ids)
}

/// The ids in batches of at most `size` (clamped to 1..=[`MAX_BATCH`]), in order.
pub fn batches(ids: &[i64], size: usize) -> Vec<&[i64]> {
    ids.chunks(size.clamp(1, MAX_BATCH)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_commas_spaces_and_lines() {
        assert_eq!(
            parse("1,2, 3\n4\r\n5\t6,,").expect("ok"),
            vec![1, 2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn anything_but_integers_is_refused_with_the_platforms_message() {
        let error = parse("1, 2.0, x, +3, 0x10, 1e3, \"4\", 5").expect_err("an error");
        assert_eq!(
            error,
            IdsError::NotIntegers(
                ["2.0", "x", "+3", "0x10", "1e3", "\"4\""]
                    .map(str::to_owned)
                    .to_vec()
            )
        );
        assert!(
            error
                .to_string()
                .starts_with("lead_ids must only contain integer values: \"2.0\", \"x\"")
        );
        // Too large for any integer column: not an integer the platform could hold.
        assert!(matches!(
            parse("99999999999999999999999"),
            Err(IdsError::NotIntegers(_))
        ));
    }

    #[test]
    fn no_ids_and_duplicates_are_refused() {
        assert_eq!(parse(" , \n").expect_err("an error"), IdsError::Empty);
        assert_eq!(
            parse("").expect_err("an error").to_string(),
            "lead_ids must contain atleast 1 value"
        );
        let error = parse("7,8,7,9,8,7").expect_err("an error");
        assert_eq!(
            error,
            IdsError::Duplicates(vec!["7".to_owned(), "8".to_owned()])
        );
        assert_eq!(
            error.to_string(),
            "lead_ids cannot contain duplicate values: \"7\", \"8\""
        );
    }

    #[test]
    fn a_long_error_list_is_cut_short() {
        let text: Vec<String> = (0..25).map(|i| format!("x{i}")).collect();
        let message = parse(&text.join(",")).expect_err("an error").to_string();
        assert!(message.ends_with("\"x9\" and 15 more"), "{message}");
    }

    #[test]
    fn batches_hold_at_most_500_ids() {
        let ids: Vec<i64> = (1..=1234).collect();
        let sizes: Vec<usize> = batches(&ids, MAX_BATCH).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![500, 500, 234]);
        assert_eq!(
            batches(&ids, 10_000).len(),
            3,
            "never more than 500 a batch"
        );
        assert_eq!(batches(&ids, 0).len(), 1234, "at least one a batch");
    }
}
