//! Several functions in one component, including one that can fail.
//!
//! Build and run it (from the repository root):
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
//! rh-wasm deploy examples/target/wasm32-wasip2/release/text.wasm
//! rh-wasm call text/word_count '"the quick brown fox"'
//! rh-wasm call text/shout '"hello"'
//! rh-wasm call text/split_words '"a b  c"'
//! rh-wasm call text/longest_word '""'   # an error Run: the input has no words
//! ```
//!
//! `deploy` lists the four functions; each is called as `text/<function>`.
//! Arguments are JSON, so a string argument is quoted twice on a shell line.

/// Counts the whitespace-separated words of `text`.
#[rh_guest::function]
fn word_count(text: String) -> usize {
    text.split_whitespace().count()
}

/// Returns `text` in upper case, with an exclamation mark.
#[rh_guest::function]
fn shout(text: String) -> String {
    format!("{}!", text.to_uppercase())
}

/// Splits `text` into its whitespace-separated words.
#[rh_guest::function]
fn split_words(text: String) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// Returns the longest word of `text` (the first one, on a tie).
///
/// Fails when `text` has no words.
#[rh_guest::function]
fn longest_word(text: String) -> Result<String, String> {
    text.split_whitespace()
        .fold(None, |longest: Option<&str>, word| match longest {
            Some(longest) if longest.chars().count() >= word.chars().count() => Some(longest),
            _ => Some(word),
        })
        .map(str::to_owned)
        .ok_or_else(|| "the input has no words".to_owned())
}
