// MARK: - Per-request random numbers
// Every choice owns its generator, seeded from the request's seed and the choice index only, so the
// same seed gives the same text whatever else shares the batch. We write our own instead of using
// `SystemRandomNumberGenerator` (not seedable) or a library whose sequence could change between versions.

/// SplitMix64 (Steele, Lea, Flood 2014; Vigna's public-domain `splitmix64.c`): used to expand one
/// 64-bit seed into xoshiro's 256-bit state, as Vigna recommends.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0 (Blackman and Vigna, public-domain `xoshiro256starstar.c`): fast, 256 bits of state,
/// passes BigCrush. Deterministic across platforms: only wrapping integer arithmetic.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    /// Seeds the state with four SplitMix64 outputs (never all zero in practice).
    public init(seed: UInt64) {
        var mixer = SplitMix64(seed: seed)
        s0 = mixer.next(); s1 = mixer.next(); s2 = mixer.next(); s3 = mixer.next()
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }  // the one state xoshiro can't leave
    }

    /// A generator in a given state (not all zero), for checking against published outputs.
    init(state: (UInt64, UInt64, UInt64, UInt64)) {
        precondition(state.0 | state.1 | state.2 | state.3 != 0, "xoshiro's state must not be all zero")
        (s0, s1, s2, s3) = state
    }

    public mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotateLeft(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits (the top bits, which are the best ones).
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

extension Xoshiro256StarStar {
    /// The generator of choice `choice` of a request seeded with `seed`: choices get independent
    /// streams, and choice 0 of seed s is the same whatever `n` is.
    static func forChoice(_ choice: Int, seed: UInt64) -> Xoshiro256StarStar {
        var mixer = SplitMix64(seed: seed)
        var derived = mixer.next()
        if choice > 0 {
            var choiceMixer = SplitMix64(seed: derived ^ UInt64(choice) &* 0xD1B5_4A32_D192_ED03)
            derived = choiceMixer.next()
        }
        return Xoshiro256StarStar(seed: derived)
    }
}
