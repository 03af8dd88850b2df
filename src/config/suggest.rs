//! "did you mean ...?" suggestions for unknown keywords.

/// The closest candidate to `word`, if one is close enough to be a likely typo: an optimal
/// string alignment distance (swapped letters count once) of at most 1 for short words and
/// a third of the word's length otherwise, never more than 3.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (osa_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Section keywords, also suggested inside sections (a misspelt `bakend` line ends up inside the
/// previous section).
pub(crate) const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "mailers",
    "peers",
    "ring",
];

/// HAProxy's wording for an unknown keyword, with a suggestion from the section's keywords or
/// the section names when one is close.
pub(crate) fn unknown_keyword(kw: &str, section: &str, keywords: &[&str]) -> String {
    match did_you_mean(kw, keywords).or_else(|| did_you_mean(kw, SECTIONS)) {
        Some(s) => format!("unknown keyword '{kw}' in '{section}' section; did you mean '{s}'?"),
        None => format!("unknown keyword '{kw}' in '{section}' section"),
    }
}

/// Levenshtein distance where a transposition of two adjacent characters costs 1.
fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let kws = ["server", "balance", "bind", "backlog", "timeout"];
        assert_eq!(did_you_mean("sevrer", &kws), Some("server"));
        assert_eq!(did_you_mean("balanse", &kws), Some("balance"));
        assert_eq!(did_you_mean("timout", &kws), Some("timeout"));
        assert_eq!(did_you_mean("xyz", &kws), None);
        assert_eq!(did_you_mean("", &kws), None);
    }
}
