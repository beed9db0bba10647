//! The subtensor storage items yuma reads: one entry per item with its map hashers, as
//! declared in `pallets/subtensor/src/lib.rs` (runtime spec 425, opentensor/subtensor
//! 14bc6f9f), key building, and SCALE decoding that names the item and key on failure.

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
#[derive(Clone, Copy, Debug)]
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
    /// `ActivityCutoffFactorMilli(netuid) -> u32`.
    ACTIVITY_CUTOFF_FACTOR_MILLI = "ActivityCutoffFactorMilli" [Id] "u32";
    /// `LastMechansimStepBlock(netuid) -> u64` (sic).
    LAST_MECHANISM_STEP_BLOCK = "LastMechansimStepBlock" [Id] "u64";
    /// `SubnetEpochIndex(netuid) -> u64`.
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
    /// `Yuma3On(netuid) -> bool`.
    YUMA3_ON = "Yuma3On" [B128] "bool";
    /// `LiquidAlphaOn(netuid) -> bool`.
    LIQUID_ALPHA_ON = "LiquidAlphaOn" [B128] "bool";
    /// `AlphaValues(netuid) -> (u16, u16)`.
    ALPHA_VALUES = "AlphaValues" [Id] "(u16, u16)";
    /// `AlphaSigmoidSteepness(netuid) -> i16`.
    ALPHA_SIGMOID_STEEPNESS = "AlphaSigmoidSteepness" [Id] "i16";
    /// `CommitRevealWeightsEnabled(netuid) -> bool`.
    COMMIT_REVEAL_WEIGHTS_ENABLED = "CommitRevealWeightsEnabled" [Id] "bool";
    /// `MechanismCountCurrent(netuid) -> u8`.
    MECHANISM_COUNT_CURRENT = "MechanismCountCurrent" [T64] "u8";
    /// `MechanismEmissionSplit(netuid) -> Option<Vec<u16>>`.
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
    /// `WeightCommits(netuid_index, hotkey) -> Option<VecDeque<(H256, u64, u64, u64)>>`.
    WEIGHT_COMMITS = "WeightCommits" [T64, T64] "VecDeque<(H256, u64, u64, u64)>";
    /// `TimelockedWeightCommits(netuid_index, epoch) -> VecDeque<(AccountId, u64, Vec<u8>, u64)>`.
    TIMELOCKED_WEIGHT_COMMITS = "TimelockedWeightCommits" [T64, T64] "VecDeque<(AccountId, u64, BoundedVec<u8>, u64)>";
    /// `TotalHotkeyAlpha(hotkey, netuid) -> u64`.
    TOTAL_HOTKEY_ALPHA = "TotalHotkeyAlpha" [B128, Id] "u64";
    /// `ChildKeys(hotkey, netuid) -> Vec<(u64, AccountId)>`.
    CHILD_KEYS = "ChildKeys" [B128, Id] "Vec<(u64, AccountId)>";
    /// `ParentKeys(hotkey, netuid) -> Vec<(u64, AccountId)>`.
    PARENT_KEYS = "ParentKeys" [B128, Id] "Vec<(u64, AccountId)>";
    /// `PendingServerEmission(netuid) -> u64`.
    PENDING_SERVER_EMISSION = "PendingServerEmission" [Id] "u64";
    /// `PendingValidatorEmission(netuid) -> u64`.
    PENDING_VALIDATOR_EMISSION = "PendingValidatorEmission" [Id] "u64";
    /// `PendingRootAlphaDivs(netuid) -> u64`.
    PENDING_ROOT_ALPHA_DIVS = "PendingRootAlphaDivs" [Id] "u64";
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
    /// `StakeWeight(netuid) -> Vec<u16>` (written by the epoch).
    STAKE_WEIGHT = "StakeWeight" [Id] "Vec<u16>";
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
