import XCTest
@testable import Batcher

final class StopStringTests: XCTestCase {
    /// Feeds pieces; returns the released pieces and whether a stop matched.
    private func run(_ stops: [String], _ pieces: [String]) -> (released: [String], stopped: Bool, tail: String) {
        var matcher = StopStringMatcher(stops: stops)
        var released: [String] = []
        for piece in pieces {
            let (text, stopped) = matcher.append(piece)
            released.append(text)
            if stopped { return (released, true, "") }
        }
        return (released, false, matcher.finish())
    }

    func testStopSpanningTokensIsCutAndHeldTextWaits() {
        let result = run(["\n\n"], ["Hello", "\n", "\n", "World"])
        XCTAssertEqual(result.released, ["Hello", "", ""])
        XCTAssertTrue(result.stopped)
    }

    func testHeldTextIsReleasedWhenItTurnsOutNotToStop() {
        let result = run(["abc"], ["xa", "b", "d", "ab"])
        XCTAssertEqual(result.released, ["x", "", "abd", ""])
        XCTAssertFalse(result.stopped)
        XCTAssertEqual(result.tail, "ab", "held text comes out at the end")
    }

    func testStopInsideOnePieceKeepsTheTextBefore() {
        let result = run(["END"], ["one two ENDthree"])
        XCTAssertEqual(result.released, ["one two "])
        XCTAssertTrue(result.stopped)
    }

    func testEarliestOfSeveralStopsWins() {
        let result = run(["world", "lo w"], ["hello world"])
        XCTAssertEqual(result.released, ["hel"])
    }

    func testOverlappingPrefixesFindALaterStart() {
        // "aab": the held "aa" is not a prefix of "aab" at offset 0 after "aaa", but is at offset 1.
        let result = run(["aab"], ["a", "a", "a", "b"])
        XCTAssertEqual(result.released, ["", "", "a", ""])
        XCTAssertTrue(result.stopped)
    }

    func testMatchingIsOnUnicodeScalars() {
        // "é" as e + combining acute: the stop "\u{301}" matches inside what Swift sees as one Character.
        let result = run(["\u{301}"], ["cafe\u{301} au lait"])
        XCTAssertEqual(result.released, ["cafe"])
        let emoji = run(["🙂!"], ["hi 🙂", "! there"])
        XCTAssertEqual(emoji.released, ["hi ", ""])
    }

    func testNoStopsPassesEverythingThrough() {
        let result = run([], ["a", "b"])
        XCTAssertEqual(result.released, ["a", "b"])
        XCTAssertEqual(result.tail, "")
    }
}
