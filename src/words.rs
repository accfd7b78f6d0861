//! Words over the alphabet `0..d` and their places in a flattened signature.
//!
//! A signature of degree `N` lists levels `1..=N` (level 0, the constant 1, first with a scalar term),
//! each in lexicographic word order, so word `(i_1, …, i_k)` sits at `Σ_j (i_j + 1)·d^(k−j)`, minus
//! one without the scalar term: bijective base-`d` numbering.

use crate::{Error, Result};

/// Every word of `length` letters over `0..alphabet_size`, in lexicographic order.
pub fn words_of_length(alphabet_size: usize, length: usize) -> Result<Vec<Vec<usize>>> {
    let count = checked_count(alphabet_size, length)?;
    let mut out = Vec::with_capacity(count);
    let mut word = vec![0; length];
    for _ in 0..count {
        out.push(word.clone());
        // The next word: count up in base `alphabet_size`, last letter fastest.
        for letter in word.iter_mut().rev() {
            *letter += 1;
            if *letter < alphabet_size {
                break;
            }
            *letter = 0;
        }
    }
    Ok(out)
}

/// Every word of at most `max_length` letters, by length then lexicographically, the empty word
/// first: the order of a signature with its scalar term.
pub fn words(alphabet_size: usize, max_length: usize) -> Result<Vec<Vec<usize>>> {
    let mut out = Vec::new();
    for length in 0..=max_length {
        out.extend(words_of_length(alphabet_size, length)?);
    }
    Ok(out)
}

/// The Lyndon words of exactly `length` letters over `0..alphabet_size`, lexicographically (Duval's
/// algorithm); none for an empty alphabet or length 0.
pub fn lyndon_words_of_length(alphabet_size: usize, length: usize) -> Result<Vec<Vec<usize>>> {
    checked_count(alphabet_size, length)?;
    let mut out = Vec::new();
    if alphabet_size == 0 || length == 0 {
        return Ok(out);
    }
    let mut word = vec![0];
    while !word.is_empty() {
        let m = word.len();
        if m == length {
            out.push(word.clone());
        }
        while word.len() < length {
            word.push(word[word.len() - m]);
        }
        while word.last() == Some(&(alphabet_size - 1)) {
            word.pop();
        }
        if let Some(last) = word.last_mut() {
            *last += 1;
        }
    }
    Ok(out)
}

/// Whether `word` is a Lyndon word: non-empty and strictly smaller than each of its proper suffixes.
pub fn is_lyndon(word: &[usize]) -> bool {
    !word.is_empty() && (1..word.len()).all(|i| word < &word[i..])
}

/// The index of `word` in a flattened signature over `alphabet_size` letters (with or without the
/// scalar term). The empty word has an index only with the scalar term.
///
/// ```
/// use roughsig::{idx_to_word, word_to_idx};
/// assert_eq!(word_to_idx(&[1, 0], 3, false)?, 3 + 3);
/// assert_eq!(idx_to_word(6, 3, false)?, vec![1, 0]);
/// # Ok::<(), roughsig::Error>(())
/// ```
pub fn word_to_idx(word: &[usize], alphabet_size: usize, scalar_term: bool) -> Result<usize> {
    if let Some((l, &letter)) = word.iter().enumerate().find(|(_, &i)| i >= alphabet_size) {
        return Err(Error::invalid(format!(
            "word[{l}] = {letter}: letters must be below the alphabet size {alphabet_size}"
        )));
    }
    if word.is_empty() && !scalar_term {
        return Err(Error::invalid(
            "the empty word has no index in a signature without the scalar term",
        ));
    }
    let overflow = || Error::invalid(format!("word {word:?}: its index overflows"));
    let mut idx: usize = 0;
    for &i in word {
        idx = idx
            .checked_mul(alphabet_size)
            .and_then(|v| v.checked_add(i + 1))
            .ok_or_else(overflow)?;
    }
    Ok(if scalar_term { idx } else { idx - 1 })
}

/// The word at index `idx` of a flattened signature over `alphabet_size` letters (with or without the
/// scalar term): the inverse of [`word_to_idx`].
pub fn idx_to_word(idx: usize, alphabet_size: usize, scalar_term: bool) -> Result<Vec<usize>> {
    if alphabet_size == 0 {
        return Err(Error::invalid("the alphabet size must be at least 1"));
    }
    let mut n = if scalar_term {
        idx
    } else {
        idx.checked_add(1)
            .ok_or_else(|| Error::invalid(format!("index {idx} is too large")))?
    };
    let mut word = Vec::new();
    while n > 0 {
        // Bijective base d: digits 1..=d stand for letters 0..d.
        let digit = (n - 1) % alphabet_size;
        word.push(digit);
        n = (n - 1) / alphabet_size;
    }
    word.reverse();
    Ok(word)
}

/// `alphabet_size^length`, refused when it would not fit in memory as words.
fn checked_count(alphabet_size: usize, length: usize) -> Result<usize> {
    u32::try_from(length)
        .ok()
        .and_then(|l| alphabet_size.checked_pow(l))
        .filter(|&c| c.saturating_mul(length.max(1)) <= 1 << 32)
        .ok_or_else(|| {
            Error::invalid(format!(
                "{alphabet_size}^{length} words of length {length} are too many to list"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_and_words_are_inverse() {
        for d in 1..4 {
            let all = words(d, 3).unwrap();
            for (idx, w) in all.iter().enumerate() {
                assert_eq!(word_to_idx(w, d, true).unwrap(), idx, "{w:?}");
                assert_eq!(&idx_to_word(idx, d, true).unwrap(), w);
                if idx > 0 {
                    assert_eq!(word_to_idx(w, d, false).unwrap(), idx - 1);
                    assert_eq!(&idx_to_word(idx - 1, d, false).unwrap(), w);
                }
            }
        }
        assert!(word_to_idx(&[], 2, false).is_err());
        assert!(word_to_idx(&[2], 2, false).is_err());
        assert!(word_to_idx(&[1; 80], 2, false).is_err());
    }

    #[test]
    fn lyndon_words_are_the_lyndon_words_of_each_length() {
        for d in 1..4 {
            for n in 1..6 {
                let want: Vec<Vec<usize>> = words_of_length(d, n)
                    .unwrap()
                    .into_iter()
                    .filter(|w| is_lyndon(w))
                    .collect();
                assert_eq!(lyndon_words_of_length(d, n).unwrap(), want, "d {d} n {n}");
            }
        }
        // Witt's formula: 4^4 words of length 4 hold (256 − 16)/4 = 60 Lyndon words.
        assert_eq!(lyndon_words_of_length(4, 4).unwrap().len(), 60);
        assert!(is_lyndon(&[0, 0, 1]) && !is_lyndon(&[0, 1, 0]) && !is_lyndon(&[]));
        assert!(words_of_length(10, 40).is_err());
    }
}
