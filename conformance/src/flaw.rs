//! Named flaws: small, deliberate deviations of the reference MTA or of its
//! protocol machine, each reproducing a bug class seen in the field or
//! suggested by the standard's text.
//!
//! A flaw is selected by its kebab-case name everywhere (simulator, suite,
//! fuzzers, `rtse serve`): `"forgets-given-turn".parse::<Flaw>()`. Each one
//! is a single named branch in [`crate::machine`] or [`crate::mta`] (search
//! for `Flaw::` to find it); nothing else in the code differs.
//!
//! | flaw | where | deviation | what shows it |
//! |---|---|---|---|
//! | `forgets-given-turn` | machine | after recovery takes the Turn from its pre-loss memory, not from the recovery's Token Setting (so it ignores a please for a Turn the setting gave it) | `turn-lost` |
//! | `turn-cleared-on-send` | machine | a GTC sent and never acknowledged counts as given for good: as recovering initiator it proposes `15`, and after recovery it never reclaims the Turn the setting gives back | `turn-lost` |
//! | `both-claim-after-recovery` | machine | takes the Turn after every recovery whatever the Token Setting says | `two-holders`, `data-without-turn` |
//! | `duplicates-on-resume` | machine | restarts an interrupted transfer from the start (new AS) instead of resuming it (AR) from the last acknowledged checkpoint | `transfer-duplicated` |
//! | `drops-unconfirmed` | machine | forgets (reports as done) a transfer not confirmed when the association dropped | `transfer-lost` |
//! | `sends-without-turn` | machine + MTA | starts a transfer while not holding the Turn | `data-without-turn` |
//! | `ignores-please` | MTA | never gives the Turn on a please, even when idle | `please-unanswered` |
//! | `no-recovery` | machine + MTA | never recovers; after a loss it reopens only when its backlog reaches the threshold | `transfer-lost` / `transfer-duplicated`, backlog |
//! | `window-overrun` | machine | sends windowSize + 1 unacknowledged checkpoints (ISODE normal mode: `>` instead of `>=`) | `window-exceeded` |
//! | `responder-recovers` | machine | the association-responder, not the initiator, re-establishes a lost association | `recovery-by-responder` |
//! | `gtc-during-activity` | machine + MTA | gives the Turn (GTC) on a please while its transfer is still in progress | `gtc-during-activity` |

use std::fmt;
use std::str::FromStr;

/// One named flaw. See the [module docs](self) for what each one changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flaw {
    /// After recovery, the Turn from pre-loss memory instead of the Token Setting.
    ForgetsGivenTurn,
    /// An unacknowledged GTC counts as given: proposes `15`, never reclaims.
    TurnClearedOnSend,
    /// After recovery, claims the Turn whatever the Token Setting says.
    BothClaimAfterRecovery,
    /// Restarts an interrupted transfer (AS) instead of resuming it (AR).
    DuplicatesOnResume,
    /// Forgets a transfer not confirmed when the association dropped.
    DropsUnconfirmed,
    /// Starts a transfer without holding the Turn.
    SendsWithoutTurn,
    /// Never answers a please with a give.
    IgnoresPlease,
    /// Never recovers; only the backlog threshold reopens.
    NoRecovery,
    /// windowSize + 1 unacknowledged checkpoints.
    WindowOverrun,
    /// The responder re-establishes a lost association.
    ResponderRecovers,
    /// GTC while a transfer is in progress.
    GtcDuringActivity,
}

impl Flaw {
    /// Every flaw, in declaration order.
    pub const ALL: [Flaw; 11] = [
        Flaw::ForgetsGivenTurn,
        Flaw::TurnClearedOnSend,
        Flaw::BothClaimAfterRecovery,
        Flaw::DuplicatesOnResume,
        Flaw::DropsUnconfirmed,
        Flaw::SendsWithoutTurn,
        Flaw::IgnoresPlease,
        Flaw::NoRecovery,
        Flaw::WindowOverrun,
        Flaw::ResponderRecovers,
        Flaw::GtcDuringActivity,
    ];

    /// The kebab-case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Flaw::ForgetsGivenTurn => "forgets-given-turn",
            Flaw::TurnClearedOnSend => "turn-cleared-on-send",
            Flaw::BothClaimAfterRecovery => "both-claim-after-recovery",
            Flaw::DuplicatesOnResume => "duplicates-on-resume",
            Flaw::DropsUnconfirmed => "drops-unconfirmed",
            Flaw::SendsWithoutTurn => "sends-without-turn",
            Flaw::IgnoresPlease => "ignores-please",
            Flaw::NoRecovery => "no-recovery",
            Flaw::WindowOverrun => "window-overrun",
            Flaw::ResponderRecovers => "responder-recovers",
            Flaw::GtcDuringActivity => "gtc-during-activity",
        }
    }

    /// One line on what the flaw does.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Flaw::ForgetsGivenTurn => {
                "after recovery trusts its pre-loss memory of the Turn instead of the recovery's Token Setting"
            }
            Flaw::TurnClearedOnSend => "an unacknowledged GTC counts as given: never reclaims the Turn after recovery",
            Flaw::BothClaimAfterRecovery => "claims the Turn after recovery whatever the Token Setting says",
            Flaw::DuplicatesOnResume => "restarts an interrupted transfer from the start instead of resuming it",
            Flaw::DropsUnconfirmed => "forgets a transfer not confirmed when the association dropped",
            Flaw::SendsWithoutTurn => "starts a transfer without holding the Turn",
            Flaw::IgnoresPlease => "never gives the Turn on a please, even when idle",
            Flaw::NoRecovery => "never recovers; only the backlog threshold reopens an association",
            Flaw::WindowOverrun => "sends windowSize + 1 unacknowledged checkpoints",
            Flaw::ResponderRecovers => "the association-responder re-establishes a lost association",
            Flaw::GtcDuringActivity => "gives the Turn while its transfer is in progress",
        }
    }
}

impl fmt::Display for Flaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown flaw name; lists the known ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFlaw(pub String);

impl fmt::Display for UnknownFlaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown flaw {:?}; known: {}", self.0, Flaw::ALL.map(Flaw::name).join(", "))
    }
}

impl std::error::Error for UnknownFlaw {}

impl FromStr for Flaw {
    type Err = UnknownFlaw;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flaw::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| UnknownFlaw(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for f in Flaw::ALL {
            assert_eq!(f.to_string().parse::<Flaw>(), Ok(f));
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{}\"", f.name()));
        }
        let mut names: Vec<_> = Flaw::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Flaw::ALL.len());
        let e = "forgets".parse::<Flaw>().unwrap_err();
        assert!(e.to_string().contains("forgets-given-turn"), "{e}");
    }
}
