import CPrefetch

// The tile of a lone row: a decode step of one sequence (and the last row of M = 7, 13, …). Nothing is
// reused, every weight is read once, so what counts is streaming the panels at the memory's rate with
// as little work per byte as possible; the multi-row tiles (MatMul.swift) reuse each panel row across
// rows instead. Each output element is still one FMA chain over k = 0, 1, …, K-1 from 0, then + bias,
// exactly as there: which tile computes a row never changes its result.
//
// On CPUs with AVX-512 only float32 rows take this tile (FloatKernel.swift).
//
// Measured with one thread on panels in L2 (768 × 192, 125M shapes): float32 runs at ~220 GB/s, far
// above what memory delivers; 16-bit panels are bound by their widening. float16 converts with
// VCVTPH2PS at about one register per cycle: ~95 GB/s with 3, 4 or 5 panels per tile (87 with the
// look-ahead prefetches below), but 62 GB/s with 6, where the compiler hoists the conversions of four
// panels and spills two accumulators, whose store-to-load round trip per k then sets the pace.
// bfloat16 widens a panel row with one load, a shift and an AND in lane order (BFloat16Panel): ~107
// GB/s, against 76 with two zero-extending loads and two shifts. Each is more than twice what one
// core streamed from memory in our runs (MachineCeilings stream with one thread: 37 GB/s at best).

/// Up to 6 panels of one row: tiles of at most `Element.oneRowPanels` panels, in address order.
func oneRowTiles<Element: PanelElement>(_ element: Element.Type, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                        _ w: UnsafePointer<Element.Stored>, _ bias: UnsafePointer<Float>?,
                                        panelCount: Int, m: Int, panel: Int, K: Int, N: Int, prefetch: Prefetch?) {
    var first = panel
    let end = panel + panelCount
    while first < end {
        let count = min(Element.oneRowPanels, end - first)
        func run<Panels: Count>(_ panels: Panels.Type) {
            oneRowTile(panels, element, y, x, w, bias, m: m, panel: first, K: K, N: N, prefetch: prefetch)
        }
        switch count {
        case 6: run(P6.self)
        case 5: run(P5.self)
        case 4: run(P4.self)
        case 3: run(P3.self)
        case 2: run(P2.self)
        default: run(P1.self)
        }
        first += count
    }
}

/// y[m, panel..<panel+P] = x[m, :] · panels + bias, with P ≤ 6 accumulators of 16 columns, one per panel.
private func oneRowTile<Panels: Count, Element: PanelElement>(_ panels: Panels.Type, _ element: Element.Type,
                                                              _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                                              _ weights: UnsafePointer<Element.Stored>, _ bias: UnsafePointer<Float>?,
                                                              m: Int, panel: Int, K: Int, N: Int, prefetch: Prefetch?) {
    let P = Panels.value
    let xm = x + m * K
    let panelFloats = K * panelWidth
    let (w0, w1, w2, w3, w4, w5) = sixStarts(weights + panel * panelFloats, count: P, stride: panelFloats)
    var a0 = PanelRow(), a1 = PanelRow(), a2 = PanelRow(), a3 = PanelRow(), a4 = PanelRow(), a5 = PanelRow()
    // Each stream is fetched `ahead` elements in advance, one prefetch per line: the hardware
    // prefetcher alone falls behind P streams of 16-bit rows. The first `ahead` of every stream are
    // asked for at once before the loop (the first tile of a column range would otherwise start cold),
    // and near a panel's end the look-ahead moves on to the same stream of the next tile (the P panels
    // after these), so that tile starts warm too. A prefetch past the weights is harmless: it never faults.
    let ahead = Element.singleRowLookahead
    let elementsPerLine = 64 / MemoryLayout<Element.Stored>.stride
    let kPerLine = elementsPerLine / panelWidth
    let nextTile = (P - 1) * panelFloats
    @inline(__always) func prefetchStreams(at offset: Int) {
        prefetchForRead(w0 + offset)
        if P > 1 { prefetchForRead(w1 + offset) }
        if P > 2 { prefetchForRead(w2 + offset) }
        if P > 3 { prefetchForRead(w3 + offset) }
        if P > 4 { prefetchForRead(w4 + offset) }
        if P > 5 { prefetchForRead(w5 + offset) }
    }
    if ahead > 0 {
        for offset in stride(from: 0, to: min(ahead, panelFloats), by: elementsPerLine) { prefetchStreams(at: offset) }
    }
    var k = 0
    while k < K {
        let offset = k &* panelWidth
        if let prefetch { prefetchForRead(prefetch.next + k &* prefetch.stride) }
        if ahead > 0 && k & (kPerLine - 1) == 0 {
            let next = offset &+ ahead
            prefetchStreams(at: next < panelFloats ? next : next &+ nextTile)
        }
        let b = PanelRow(repeating: xm[k])
        a0 = a0.addingProduct(b, Element.laneRow(w0, offset))
        if P > 1 { a1 = a1.addingProduct(b, Element.laneRow(w1, offset)) }
        if P > 2 { a2 = a2.addingProduct(b, Element.laneRow(w2, offset)) }
        if P > 3 { a3 = a3.addingProduct(b, Element.laneRow(w3, offset)) }
        if P > 4 { a4 = a4.addingProduct(b, Element.laneRow(w4, offset)) }
        if P > 5 { a5 = a5.addingProduct(b, Element.laneRow(w5, offset)) }
        k += 1
    }
    store(Element.columns(fromLanes: a0), y, bias, row: m, panel: panel, N: N)
    if P > 1 { store(Element.columns(fromLanes: a1), y, bias, row: m, panel: panel + 1, N: N) }
    if P > 2 { store(Element.columns(fromLanes: a2), y, bias, row: m, panel: panel + 2, N: N) }
    if P > 3 { store(Element.columns(fromLanes: a3), y, bias, row: m, panel: panel + 3, N: N) }
    if P > 4 { store(Element.columns(fromLanes: a4), y, bias, row: m, panel: panel + 4, N: N) }
    if P > 5 { store(Element.columns(fromLanes: a5), y, bias, row: m, panel: panel + 5, N: N) }
}
