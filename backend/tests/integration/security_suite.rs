//! The security and reliability suite stays whole: every case CI-01 … CI-26 of the threat model has a test
//! named after it (`ci_NN_…`, or `ci_NN_MM_…` for one test holding two cases), and `SECURITY.md` lists each
//! case with the tests that hold it, or says why it does not apply.

use std::collections::{BTreeMap, BTreeSet};

use crate::harness::{repo, repo_files};

/// The cases of the threat model's CI list.
const CASES: std::ops::RangeInclusive<u32> = 1..=28;

/// Every `fn ci_…` in the repository's Rust sources, with the cases its name carries.
fn case_tests() -> BTreeMap<String, BTreeSet<u32>> {
    let mut found = BTreeMap::new();
    for path in repo_files(".")
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
    {
        let text = std::fs::read_to_string(&path).unwrap();
        let declared = text.lines().filter_map(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("async ").unwrap_or(line);
            line.strip_prefix("fn ci_")
        });
        for rest in declared {
            let test: String = "ci_"
                .chars()
                .chain(
                    rest.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_'),
                )
                .collect();
            let cases: BTreeSet<u32> = test
                .split('_')
                .skip(1)
                .map_while(|part| (part.len() == 2).then(|| part.parse().ok()).flatten())
                .collect();
            assert!(!cases.is_empty(), "{test} in {} names no case", path.display());
            found.insert(test, cases);
        }
    }
    found
}

/// `SECURITY.md`'s rows `| CI-NN | … |`: the case and the rest of its row.
fn documented_cases(security: &str) -> BTreeMap<u32, String> {
    security
        .lines()
        .filter_map(|line| line.strip_prefix("| CI-"))
        .map(|row| {
            let (number, rest) = row.split_once(' ').unwrap();
            (number.parse().unwrap(), rest.to_owned())
        })
        .collect()
}

#[test]
fn every_case_has_its_test_and_its_row() {
    let root = repo();
    let tests = case_tests();
    let security = std::fs::read_to_string(root.join("SECURITY.md")).unwrap();
    let rows = documented_cases(&security);
    for case in CASES {
        let named: Vec<&String> = tests
            .iter()
            .filter(|(_, cases)| cases.contains(&case))
            .map(|(test, _)| test)
            .collect();
        let row = rows
            .get(&case)
            .unwrap_or_else(|| panic!("SECURITY.md has no row for CI-{case:02}"));
        if named.is_empty() {
            assert!(
                row.contains("does not apply"),
                "CI-{case:02} has no test named ci_{case:02}_…, and its row says no reason why it does not apply"
            );
        }
        for test in named {
            assert!(
                row.contains(&format!("`{test}`")),
                "SECURITY.md's row for CI-{case:02} does not name its test `{test}`"
            );
        }
    }
    assert_eq!(
        rows.keys().copied().collect::<Vec<_>>(),
        CASES.collect::<Vec<_>>(),
        "one row per case, in order"
    );
}
