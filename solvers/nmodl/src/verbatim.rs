//! VERBATIM blocks are C code, which miv cannot run. The few uses in MiV's mechanisms are recognised
//! by what they call and mapped to built-in behaviour; anything else is rejected by the checker.

/// What a recognised VERBATIM block does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verbatim {
    /// Only `#include`, preprocessor lines, comments or `return 0;`: nothing to do.
    Nothing,
    /// `cai = _ion_cai;`: reset a variable to the ion's value read at block entry.
    IonRead(String),
    /// Gfluct3's file-level declarations for choosing a random generator.
    RandomSetup,
    /// `nrnran123_setseq(...)` in INITIAL: restart the instance's random stream.
    RandomRestart,
    /// The C body of a normal-deviate FUNCTION drawing from the bound stream; the NMODL fallback
    /// statement beside it (`= normrand(mean, std)`) computes the same thing from the instance stream.
    RandomPick,
    /// `noiseFromRandom*()` binding a hoc Random object; miv binds streams through its API.
    RandomBind,
    /// CoreNEURON checkpoint serialisation (`bbcore_write` / `bbcore_read`).
    CoreNeuronSerialization,
    /// VecStim `element()`: next event time from the played vector.
    VectorElement,
    /// VecStim `play()`: the vector is supplied through the API.
    VectorPlay,
    /// DESTRUCTOR releasing the played vector.
    VectorRelease,
    /// Only `printf(...)` statements (diagnostic output, dropped).
    Printf,
}

fn strip_c_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'*' {
            match text[i + 2..].find("*/") {
                Some(k) => i += k + 4,
                None => break,
            }
        } else if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'/' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

fn has_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = code[i + word.len()..].chars().next().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        before && after
    })
}

/// Classify a VERBATIM block; `None` when it is not one of the known uses.
pub fn classify(text: &str) -> Option<Verbatim> {
    let code = strip_c_comments(text);
    let statements: Vec<&str> = code.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if statements.is_empty() || statements.iter().all(|l| *l == "return 0;") {
        return Some(Verbatim::Nothing);
    }
    let w = |s: &str| has_word(&code, s);
    if w("bbcore_write") || w("bbcore_read") {
        return Some(Verbatim::CoreNeuronSerialization);
    }
    if w("vector_capacity") && w("vector_vec") && w("_p_ptr") && w("index") && w("etime") {
        return Some(Verbatim::VectorElement);
    }
    if w("vector_arg") && w("_p_ptr") {
        return Some(Verbatim::VectorPlay);
    }
    if w("hoc_obj_unref") && w("vector_pobj") {
        return Some(Verbatim::VectorRelease);
    }
    if w("nrnran123_newstream") || w("nrnran123_newstream3") || w("nrn_random_arg") {
        return Some(Verbatim::RandomBind);
    }
    if w("nrnran123_normal") || w("nrn_random_pick") {
        return Some(Verbatim::RandomPick);
    }
    if w("nrnran123_setseq") {
        return Some(Verbatim::RandomRestart);
    }
    if w("_ran_compat") && statements.iter().all(|l| l.starts_with("static int _ran_compat")) {
        return Some(Verbatim::RandomSetup);
    }
    if statements.iter().all(|l| l.starts_with("printf(") || l.starts_with("fprintf(")) {
        return Some(Verbatim::Printf);
    }
    // `name = _ion_name;` (one statement, same name).
    if statements.len() == 1 {
        let s = statements[0].trim_end_matches(';').trim();
        if let Some((lhs, rhs)) = s.split_once('=') {
            let (lhs, rhs) = (lhs.trim(), rhs.trim());
            if rhs.strip_prefix("_ion_") == Some(lhs) && lhs.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Some(Verbatim::IonRead(lhs.to_string()));
            }
        }
    }
    None
}

/// The first non-empty line, for error messages.
pub fn first_line(text: &str) -> &str {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_uses() {
        assert_eq!(classify("\n#include <stdlib.h> /* to avoid\n a warning */\n"), Some(Verbatim::Nothing));
        assert_eq!(classify("\n\tcai=_ion_cai;\n"), Some(Verbatim::IonRead("cai".into())));
        assert_eq!(
            classify("#if !NRNBBCORE\nstatic int _ran_compat;\n#define IFNEWSTYLE(arg) arg\n#endif"),
            Some(Verbatim::RandomSetup)
        );
        assert_eq!(classify("printf(\"seed %g\\n\", _lseed);"), Some(Verbatim::Printf));
    }

    #[test]
    fn anything_else_is_unknown() {
        assert_eq!(classify("x = hoc_call_func(s, 1);"), None);
        assert_eq!(classify("cai = _ion_cao;"), None);
        assert_eq!(first_line("\n\n  abc = 1;\n"), "abc = 1;");
    }
}
