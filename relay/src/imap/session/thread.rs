//! THREAD and UID THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES.
//!
//! The messages are selected and their headers read as for SORT ([`Session::keyed`]); the
//! algorithm ([`threading`]) and the building of the answer run on the heavy-work gate,
//! within the same `imap.max_command_secs`. The answer nests one level per branching
//! message; below [`MAX_DEPTH`] levels a thread's remaining messages are listed flat (in
//! thread order) so neither building, sending nor dropping the answer can exhaust a stack.

use imap_next::imap_types::core::{Charset, Vec2};
use imap_next::imap_types::extensions::thread::{Thread, ThreadingAlgorithm};

use super::search::SearchError;
use super::sort::{Keyed, bad_charset, failed, known_charset};
#[allow(clippy::wildcard_imports)]
use super::*;
use crate::imap::threading::{self, Forest, Msg};

/// Nesting levels of the THREAD answer before a subtree is listed flat.
const MAX_DEPTH: usize = 64;

/// The messages of `node`'s subtree in depth-first order, `node` first.
fn flat(forest: &Forest, node: usize, ids: &[NonZeroU32], out: &mut Vec<NonZeroU32>) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if let Some(m) = forest.nodes[n].msg {
            out.push(ids[m]);
        }
        stack.extend(forest.nodes[n].children.iter().rev());
    }
}

/// The answer for `node` (a message, or a dummy with two or more children).
fn to_thread(forest: &Forest, node: usize, ids: &[NonZeroU32], depth: usize) -> Option<Thread> {
    let mut n = node;
    // A dummy with one child stands for that child.
    while forest.nodes[n].msg.is_none() && forest.nodes[n].children.len() == 1 {
        n = forest.nodes[n].children[0];
    }
    let children = |n: usize| -> Vec<Thread> {
        forest.nodes[n]
            .children
            .iter()
            .filter_map(|&c| to_thread(forest, c, ids, depth + 1))
            .collect()
    };
    let Some(m) = forest.nodes[n].msg else {
        let answers = children(n);
        return match answers.len() {
            0 => None,
            1 => answers.into_iter().next(),
            _ => Some(Thread::Nested {
                answers: Vec2::unvalidated(answers),
            }),
        };
    };
    let mut prefix = vec![ids[m]];
    if depth >= MAX_DEPTH {
        for &c in &forest.nodes[n].children {
            flat(forest, c, ids, &mut prefix);
        }
        return Some(Thread::Members {
            prefix: Vec1::unvalidated(prefix),
            answers: None,
        });
    }
    // A chain of single replies is one prefix.
    while let [only] = forest.nodes[n].children.as_slice() {
        match forest.nodes[*only].msg {
            Some(c) => {
                prefix.push(ids[c]);
                n = *only;
            }
            None => break,
        }
    }
    let answers = children(n);
    let answers = match answers.len() {
        0 => None,
        1 => {
            // Only a dummy child can get here: its single thread continues the prefix.
            match answers.into_iter().next() {
                Some(Thread::Members {
                    prefix: more,
                    answers,
                }) => {
                    prefix.extend(more.into_inner());
                    return Some(Thread::Members {
                        prefix: Vec1::unvalidated(prefix),
                        answers,
                    });
                }
                Some(Thread::Nested { answers }) => Some(answers),
                None => None,
            }
        }
        _ => Some(Vec2::unvalidated(answers)),
    };
    Some(Thread::Members {
        prefix: Vec1::unvalidated(prefix),
        answers,
    })
}

/// The THREAD answer for `forest`, `ids[i]` being the number of message `i`.
pub(super) fn answer(forest: &Forest, ids: &[NonZeroU32]) -> Vec<Thread> {
    forest
        .roots
        .iter()
        .filter_map(|&r| to_thread(forest, r, ids, 0))
        .collect()
}

impl Session<'_> {
    /// THREAD / UID THREAD.
    pub(super) async fn thread(
        &mut self,
        tag: Tag<'static>,
        algorithm: &ThreadingAlgorithm<'static>,
        charset: &Charset<'static>,
        search: &Vec1<SearchKey<'static>>,
        uid: bool,
    ) -> Status<'static> {
        let references = match algorithm {
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::Other(other) => {
                return bad(
                    Some(tag),
                    &format!("unknown threading algorithm {}", other.as_ref()),
                );
            }
        };
        if !known_charset(charset) {
            return bad_charset(tag);
        }
        let deadline = tokio::time::Instant::now() + self.ctx.config.imap.max_command;
        let keyed = match self.keyed(search, true, deadline).await {
            Ok(k) => k,
            Err(err) => return failed(tag, "THREAD", &err),
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let threads = self
            .ctx
            .heavy
            .run(left, move || {
                let deadline = std::time::Instant::now() + left;
                let (msgs, ids): (Vec<Msg>, Vec<NonZeroU32>) = keyed
                    .into_iter()
                    .map(|k: Keyed| {
                        let id = if uid {
                            nz(k.entry.uid)
                        } else {
                            nz(i64::from(k.seq))
                        };
                        let date = k.date();
                        let msg = Msg {
                            id: k.seq,
                            date,
                            message_id: k.keys.message_id,
                            references: k.keys.references,
                            base_subject: k.keys.subject,
                            reply: k.keys.reply,
                        };
                        (msg, id)
                    })
                    .unzip();
                let forest = if references {
                    threading::references(&msgs, deadline)?
                } else {
                    threading::ordered_subject(&msgs)
                };
                Some(answer(&forest, &ids))
            })
            .await;
        match threads {
            Ok(Some(threads)) => {
                self.send_data(Data::Thread(threads));
                ok(tag, None, "THREAD done")
            }
            Ok(None) | Err(_) => failed(tag, "THREAD", &SearchError::TimeLimit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> std::time::Instant {
        std::time::Instant::now() + std::time::Duration::from_secs(3600)
    }

    fn render(threads: &[Thread]) -> String {
        threads.iter().map(ToString::to_string).collect()
    }

    fn msg(id: u32, mid: &str, refs: &[&str]) -> Msg {
        Msg {
            id,
            date: i64::from(id),
            message_id: Some(mid.to_owned()),
            references: refs.iter().map(|r| (*r).to_owned()).collect(),
            ..Msg::default()
        }
    }

    fn ids(n: u32) -> Vec<NonZeroU32> {
        (1..=n).filter_map(NonZeroU32::new).collect()
    }

    #[test]
    fn answers_in_rfc_notation() {
        let msgs = vec![
            msg(1, "1", &[]),
            msg(2, "2", &["1"]),
            msg(3, "3", &["1"]),
            msg(4, "4", &["1", "2"]),
            msg(5, "5", &["x"]),
            msg(6, "6", &["x"]),
            msg(7, "7", &["1", "2", "4"]),
        ];
        let forest = threading::references(&msgs, far()).expect("in time");
        assert_eq!(render(&answer(&forest, &ids(7))), "(1 (2 4 7)(3))((5)(6))");
    }

    /// A deep, branching thread is answered (flat below MAX_DEPTH) without recursion
    /// trouble, and every message is in it once.
    #[test]
    fn deep_threads_are_bounded() {
        let n: u32 = 20_000;
        let mut msgs = Vec::new();
        for i in 1..=n {
            // Each odd message replies to the previous odd one; each even one is a
            // side reply to it: a branch at every level.
            let parent = if i % 2 == 1 {
                i.saturating_sub(2)
            } else {
                i - 1
            };
            let refs: Vec<String> = if parent == 0 {
                Vec::new()
            } else {
                vec![parent.to_string()]
            };
            msgs.push(Msg {
                id: i,
                date: i64::from(i),
                message_id: Some(i.to_string()),
                references: refs,
                ..Msg::default()
            });
        }
        let forest = threading::references(&msgs, far()).expect("in time");
        let threads = answer(&forest, &ids(n));
        let text = render(&threads);
        let mut numbers: Vec<u32> = text
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse().ok())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=n).collect::<Vec<_>>());
    }
}
