//! The subtensor storage items yuma reads: one entry per item with its map hashers, as
//! declared in `pallets/subtensor/src/lib.rs` (runtime spec 425, opentensor/subtensor
//! 14bc6f9f; items of older runtimes as declared at their era's commit, conformance
//! ERAS.md), key building, SCALE decoding that names the item and key on failure, and
//! [`Layout`]: which of them a runtime spec stored and how its epoch read them.

use parity_scale_codec::{Decode, DecodeAll};
use sp_crypto_hashing::{blake2_128, twox_64, twox_128};

use super::error::{ChainError, Result};
use super::rpc::to_hex;

/// The pallet every item lives in.
pub const PALLET: &str = "SubtensorModule";

/// Per-mechanism items are keyed by `mechanism * MECHANISM_STRIDE + netuid`.
pub const MECHANISM_STRIDE: u16 = 4096;

/// An account id (hotkey): 32 raw bytes.
pub type AccountId = [u8; 32];

/// How one map key is hashed into the storage key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hasher {
    /// The key's SCALE bytes as they are.
    Identity,
    /// `twox64(key) ++ key`.
    Twox64Concat,
    /// `blake2_128(key) ++ key`.
    Blake2_128Concat,
}

impl Hasher {
    fn apply(self, key: &[u8], out: &mut Vec<u8>) {
        match self {
            Hasher::Identity => {}
            Hasher::Twox64Concat => out.extend_from_slice(&twox_64(key)),
            Hasher::Blake2_128Concat => out.extend_from_slice(&blake2_128(key)),
        }
        out.extend_from_slice(key);
    }

    /// Bytes this hasher puts before the key itself.
    pub fn hash_len(self) -> usize {
        match self {
            Hasher::Identity => 0,
            Hasher::Twox64Concat => 8,
            Hasher::Blake2_128Concat => 16,
        }
    }
}

/// One storage item: its name, the hasher of each map key, and its value type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// Storage item name, as in the pallet (typos included).
    pub name: &'static str,
    /// One hasher per map key (empty for a plain value).
    pub hashers: &'static [Hasher],
    /// The value type, for error messages.
    pub ty: &'static str,
}

use Hasher::{Blake2_128Concat as B128, Identity as Id, Twox64Concat as T64};

macro_rules! items {
    ($($(#[$doc:meta])* $konst:ident = $name:literal [$($h:ident),*] $ty:literal;)*) => {
        $($(#[$doc])* pub const $konst: Item = Item { name: $name, hashers: &[$($h),*], ty: $ty };)*
        /// Every item, for tests and tools.
        pub const ALL: &[Item] = &[$($konst),*];
    };
}

items! {
    /// `NetworksAdded(netuid) -> bool`.
    NETWORKS_ADDED = "NetworksAdded" [Id] "bool";
    /// `SubnetworkN(netuid) -> u16`.
    SUBNETWORK_N = "SubnetworkN" [Id] "u16";
    /// `Tempo(netuid) -> u16`.
    TEMPO = "Tempo" [Id] "u16";
    /// `ActivityCutoffFactorMilli(netuid) -> u32` (from spec 423).
    ACTIVITY_CUTOFF_FACTOR_MILLI = "ActivityCutoffFactorMilli" [Id] "u32";
    /// `ActivityCutoff(netuid) -> u16`, a block count (what the epoch reads before spec 423).
    ACTIVITY_CUTOFF = "ActivityCutoff" [Id] "u16";
    /// `LastMechansimStepBlock(netuid) -> u64` (sic).
    LAST_MECHANISM_STEP_BLOCK = "LastMechansimStepBlock" [Id] "u64";
    /// `SubnetEpochIndex(netuid) -> u64` (from spec 423).
    SUBNET_EPOCH_INDEX = "SubnetEpochIndex" [Id] "u64";
    /// `RevealPeriodEpochs(netuid) -> u64`.
    REVEAL_PERIOD_EPOCHS = "RevealPeriodEpochs" [T64] "u64";
    /// `Kappa(netuid) -> u16`.
    KAPPA = "Kappa" [Id] "u16";
    /// `BondsPenalty(netuid) -> u16`.
    BONDS_PENALTY = "BondsPenalty" [Id] "u16";
    /// `BondsMovingAverage(netuid) -> u64`.
    BONDS_MOVING_AVERAGE = "BondsMovingAverage" [Id] "u64";
    /// `MaxAllowedValidators(netuid) -> u16`.
    MAX_ALLOWED_VALIDATORS = "MaxAllowedValidators" [Id] "u16";
    /// `StakeThreshold -> u64`.
    STAKE_THRESHOLD = "StakeThreshold" [] "u64";
    /// `TaoWeight -> u64`.
    TAO_WEIGHT = "TaoWeight" [] "u64";
    /// `Yuma3On(netuid) -> bool` (from spec 273).
    YUMA3_ON = "Yuma3On" [B128] "bool";
    /// `LiquidAlphaOn(netuid) -> bool`.
    LIQUID_ALPHA_ON = "LiquidAlphaOn" [B128] "bool";
    /// `AlphaValues(netuid) -> (u16, u16)`.
    ALPHA_VALUES = "AlphaValues" [Id] "(u16, u16)";
    /// `AlphaSigmoidSteepness(netuid) -> i16` (from spec 273; a u16 in specs 273-282).
    ALPHA_SIGMOID_STEEPNESS = "AlphaSigmoidSteepness" [Id] "i16";
    /// `CommitRevealWeightsEnabled(netuid) -> bool`.
    COMMIT_REVEAL_WEIGHTS_ENABLED = "CommitRevealWeightsEnabled" [Id] "bool";
    /// `MechanismCountCurrent(netuid) -> u8` (from spec 320).
    MECHANISM_COUNT_CURRENT = "MechanismCountCurrent" [T64] "u8";
    /// `MechanismEmissionSplit(netuid) -> Option<Vec<u16>>` (from spec 320).
    MECHANISM_EMISSION_SPLIT = "MechanismEmissionSplit" [T64] "Vec<u16>";
    /// `SubnetOwnerHotkey(netuid) -> AccountId`.
    SUBNET_OWNER_HOTKEY = "SubnetOwnerHotkey" [Id] "AccountId";
    /// `Uids(netuid, hotkey) -> Option<u16>`.
    UIDS = "Uids" [Id, B128] "u16";
    /// `Keys(netuid, uid) -> AccountId`.
    KEYS = "Keys" [Id, Id] "AccountId";
    /// `BlockAtRegistration(netuid, uid) -> u64`.
    BLOCK_AT_REGISTRATION = "BlockAtRegistration" [Id, Id] "u64";
    /// `ValidatorPermit(netuid) -> Vec<bool>`.
    VALIDATOR_PERMIT = "ValidatorPermit" [Id] "Vec<bool>";
    /// `LastUpdate(netuid_index) -> Vec<u64>`.
    LAST_UPDATE = "LastUpdate" [Id] "Vec<u64>";
    /// `Weights(netuid_index, uid) -> Vec<(u16, u16)>`.
    WEIGHTS = "Weights" [Id, Id] "Vec<(u16, u16)>";
    /// `Bonds(netuid_index, uid) -> Vec<(u16, u16)>`.
    BONDS = "Bonds" [Id, Id] "Vec<(u16, u16)>";
    /// `WeightCommits(netuid_index, hotkey) -> Option<VecDeque<(H256, u64, u64, u64)>>`:
    /// (hash, commit_epoch, commit_block, _) from spec 423, (hash, commit_block,
    /// first_reveal_block, last_reveal_block) before.
    WEIGHT_COMMITS = "WeightCommits" [T64, T64] "VecDeque<(H256, u64, u64, u64)>";
    /// `TimelockedWeightCommits(netuid_index, epoch) -> VecDeque<(AccountId, u64, Vec<u8>, u64)>`
    /// (from spec 320).
    TIMELOCKED_WEIGHT_COMMITS = "TimelockedWeightCommits" [T64, T64] "VecDeque<(AccountId, u64, BoundedVec<u8>, u64)>";
    /// `CRV3WeightCommitsV2(netuid, epoch) -> VecDeque<(AccountId, u64, Vec<u8>, u64)>`: the
    /// timelocked commits of specs 297-319.
    CRV3_WEIGHT_COMMITS_V2 = "CRV3WeightCommitsV2" [T64, T64] "VecDeque<(AccountId, u64, BoundedVec<u8>, u64)>";
    /// `CRV3WeightCommits(netuid, epoch) -> VecDeque<(AccountId, Vec<u8>, u64)>`: the
    /// timelocked commits of specs 233-296, without a commit block.
    CRV3_WEIGHT_COMMITS = "CRV3WeightCommits" [T64, T64] "VecDeque<(AccountId, BoundedVec<u8>, u64)>";
    /// `TotalHotkeyAlpha(hotkey, netuid) -> u64`.
    TOTAL_HOTKEY_ALPHA = "TotalHotkeyAlpha" [B128, Id] "u64";
    /// `ChildKeys(hotkey, netuid) -> Vec<(u64, AccountId)>`.
    CHILD_KEYS = "ChildKeys" [B128, Id] "Vec<(u64, AccountId)>";
    /// `ParentKeys(hotkey, netuid) -> Vec<(u64, AccountId)>`.
    PARENT_KEYS = "ParentKeys" [B128, Id] "Vec<(u64, AccountId)>";
    /// `PendingServerEmission(netuid) -> u64` (from spec 365).
    PENDING_SERVER_EMISSION = "PendingServerEmission" [Id] "u64";
    /// `PendingValidatorEmission(netuid) -> u64` (from spec 365).
    PENDING_VALIDATOR_EMISSION = "PendingValidatorEmission" [Id] "u64";
    /// `PendingRootAlphaDivs(netuid) -> u64` (from spec 365).
    PENDING_ROOT_ALPHA_DIVS = "PendingRootAlphaDivs" [Id] "u64";
    /// `PendingEmission(netuid) -> u64` (before spec 365).
    PENDING_EMISSION = "PendingEmission" [Id] "u64";
    /// `PendingAlphaSwapped(netuid) -> u64` (before spec 365).
    PENDING_ALPHA_SWAPPED = "PendingAlphaSwapped" [Id] "u64";
    /// `Active(netuid) -> Vec<bool>` (written by the epoch).
    ACTIVE = "Active" [Id] "Vec<bool>";
    /// `Emission(netuid) -> Vec<u64>` (written by the epoch).
    EMISSION = "Emission" [Id] "Vec<u64>";
    /// `Consensus(netuid) -> Vec<u16>` (written by the epoch).
    CONSENSUS = "Consensus" [Id] "Vec<u16>";
    /// `Dividends(netuid) -> Vec<u16>` (written by the epoch).
    DIVIDENDS = "Dividends" [Id] "Vec<u16>";
    /// `ValidatorTrust(netuid) -> Vec<u16>` (written by the epoch).
    VALIDATOR_TRUST = "ValidatorTrust" [Id] "Vec<u16>";
    /// `StakeWeight(netuid) -> Vec<u16>` (written by the epoch, except in specs 320-322).
    STAKE_WEIGHT = "StakeWeight" [Id] "Vec<u16>";
    /// `Rank(netuid) -> Vec<u16>` (written by the epoch before spec 365).
    RANK = "Rank" [Id] "Vec<u16>";
    /// `Trust(netuid) -> Vec<u16>` (written by the epoch before spec 365).
    TRUST = "Trust" [Id] "Vec<u16>";
    /// `PruningScores(netuid) -> Vec<u16>` (written by the epoch before spec 365).
    PRUNING_SCORES = "PruningScores" [Id] "Vec<u16>";
    /// `Incentive(netuid_index) -> Vec<u16>` (written by the epoch).
    INCENTIVE = "Incentive" [Id] "Vec<u16>";
    /// `ImmunityPeriod(netuid) -> u16` (read by the recordings' tests).
    IMMUNITY_PERIOD = "ImmunityPeriod" [Id] "u16";
    /// `MinAllowedWeights(netuid) -> u16` (read by the recordings' tests).
    MIN_ALLOWED_WEIGHTS = "MinAllowedWeights" [Id] "u16";
    /// `MaxWeightsLimit(netuid) -> u16` (read by the recordings' tests).
    MAX_WEIGHTS_LIMIT = "MaxWeightsLimit" [Id] "u16";
    /// `Difficulty(netuid) -> u64` (read by the recordings' tests).
    DIFFICULTY = "Difficulty" [Id] "u64";
    /// `Burn(netuid) -> u64` (read by the recordings' tests).
    BURN = "Burn" [Id] "u64";
}

impl Item {
    /// `twox128(pallet) ++ twox128(name)`.
    pub fn prefix(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(32);
        k.extend_from_slice(&twox_128(PALLET.as_bytes()));
        k.extend_from_slice(&twox_128(self.name.as_bytes()));
        k
    }

    /// The full key of the entry at `parts` (each map key's SCALE bytes), or the prefix of
    /// the entries under the first `parts.len()` map keys when fewer are given.
    pub fn key(&self, parts: &[&[u8]]) -> Vec<u8> {
        debug_assert!(
            parts.len() <= self.hashers.len(),
            "{} has fewer keys",
            self.name
        );
        let mut k = self.prefix();
        for (h, p) in self.hashers.iter().zip(parts) {
            h.apply(p, &mut k);
        }
        k
    }

    /// Decodes a stored value exactly (no bytes left over); `None` gives `default`.
    pub fn decode<T: Decode>(&self, key: &[u8], raw: Option<&[u8]>, default: T) -> Result<T> {
        match raw {
            None => Ok(default),
            Some(bytes) => self.decode_some(key, bytes),
        }
    }

    /// Decodes a value that is present.
    pub fn decode_some<T: Decode>(&self, key: &[u8], mut bytes: &[u8]) -> Result<T> {
        T::decode_all(&mut bytes).map_err(|e| ChainError::Decode {
            item: self.name,
            key: to_hex(key),
            ty: self.ty,
            reason: e.to_string(),
        })
    }

    /// The SCALE bytes of the last map key of `key`, whose entries share `prefix` (the
    /// item's key up to the last map key).
    pub fn last_key<'a>(&self, key: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
        key.strip_prefix(prefix)?
            .get(self.hashers.last()?.hash_len()..)
    }
}

/// The storage index of mechanism `mechanism` of `netuid`.
pub fn storage_index(netuid: u16, mechanism: u8) -> u16 {
    (mechanism as u16)
        .saturating_mul(MECHANISM_STRIDE)
        .saturating_add(netuid)
}

/// SCALE bytes of a u16 map key.
pub fn u16_key(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}

/// The storage layout of the runtime that ran an epoch: which items its spec stored and how
/// its epoch read them. Each boundary is the spec of the opentensor/subtensor main merge
/// that changed it (conformance ERAS.md names the era commits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    spec: u32,
}

impl Layout {
    /// The oldest spec read here: dTAO (233).
    pub const FIRST_SPEC: u32 = 233;
    /// The newest spec known; a later runtime may have changed what the epoch reads.
    pub const LAST_SPEC: u32 = 425;
    /// The supported specs, as text for errors.
    pub const SUPPORTED: &'static str = "233 to 425";

    /// The layout of `spec`, or `None` outside [`Layout::FIRST_SPEC`]..=[`Layout::LAST_SPEC`].
    pub fn of_spec(spec: u32) -> Option<Layout> {
        (Self::FIRST_SPEC..=Self::LAST_SPEC)
            .contains(&spec)
            .then_some(Layout { spec })
    }

    /// The input's `spec_version`: none in today's era, whose rules inputs default to.
    pub fn spec_version(self) -> Option<u32> {
        (!self.today()).then_some(self.spec)
    }

    /// From 423: ActivityCutoffFactorMilli (before, ActivityCutoff is the block count), the
    /// stored SubnetEpochIndex with WeightCommits carrying the commit epoch (before, epochs
    /// and commit expiry derive from blocks), and the epoch reads LastMechansimStepBlock.
    pub fn today(self) -> bool {
        self.spec >= 423
    }

    /// From 252 the epoch reads the owner's uid (SubnetOwnerHotkey, then Uids).
    pub fn reads_owner(self) -> bool {
        self.spec >= 252
    }

    /// From 273 the epoch reads Yuma3On, StakeThreshold and AlphaSigmoidSteepness.
    pub fn reads_yuma3(self) -> bool {
        self.spec >= 273
    }

    /// Specs 273-282 store AlphaSigmoidSteepness as a u16 (the same two bytes as an i16).
    pub fn steepness_u16(self) -> bool {
        (273..283).contains(&self.spec)
    }

    /// From 297 the epoch masks weights by commit blocks when CommitRevealWeightsEnabled.
    pub fn commit_mask(self) -> bool {
        self.spec >= 297
    }

    /// From 320 a subnet has mechanisms (MechanismCountCurrent); before, one, keyed by
    /// netuid, which is `storage_index(netuid, 0)`.
    pub fn mechanisms(self) -> bool {
        self.spec >= 320
    }

    /// The timelocked commit queues, keyed by (netuid index, epoch).
    pub fn timelocked(self) -> Item {
        match self.spec {
            ..297 => CRV3_WEIGHT_COMMITS,
            297..320 => CRV3_WEIGHT_COMMITS_V2,
            _ => TIMELOCKED_WEIGHT_COMMITS,
        }
    }

    /// Epochs from a timelocked commit to its reveal: `reveal_period - 1` before 320.
    pub fn reveal_lag(self, reveal_period: u64) -> u64 {
        if self.spec < 320 {
            reveal_period.saturating_sub(1)
        } else {
            reveal_period
        }
    }

    /// The items whose sum the next epoch distributes.
    pub fn pending(self) -> &'static [Item] {
        if self.spec < 365 {
            &[PENDING_EMISSION, PENDING_ALPHA_SWAPPED]
        } else {
            &[
                PENDING_SERVER_EMISSION,
                PENDING_VALIDATOR_EMISSION,
                PENDING_ROOT_ALPHA_DIVS,
            ]
        }
    }

    /// Before 365 the epoch writes Rank, Trust and PruningScores.
    pub fn rank_trust_pruning(self) -> bool {
        self.spec < 365
    }

    /// Specs 320-322 compute StakeWeight but do not store it.
    pub fn stake_weight_stored(self) -> bool {
        !(320..323).contains(&self.spec)
    }

    /// BondsPenalty when absent: 0 before 257, then u16::MAX.
    pub fn default_bonds_penalty(self) -> u16 {
        if self.spec < 257 { 0 } else { u16::MAX }
    }

    /// Tempo when absent: 99 before 244, then 360.
    pub fn default_tempo(self) -> u16 {
        if self.spec < 244 { 99 } else { 360 }
    }

    /// CommitRevealWeightsEnabled when absent: false before 306, then true.
    pub fn default_commit_reveal(self) -> bool {
        self.spec >= 306
    }
}

/// The epoch index of `block` before spec 423 (`get_epoch_index`): `(block + netuid + 1) /
/// (tempo + 1)`.
pub fn block_epoch(netuid: u16, tempo: u16, block: u64) -> u64 {
    block.saturating_add(netuid as u64 + 1) / (tempo as u64 + 1)
}
