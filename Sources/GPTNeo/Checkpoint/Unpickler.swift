import Foundation

// A restricted pickle interpreter for PyTorch state dicts. Pickle is a program for a stack machine whose
// GLOBAL/REDUCE opcodes call arbitrary Python (`os.system`...); this interpreter never calls anything. It
// knows the opcodes `torch.save` emits for a state dict (protocols 2 to 5) and a handful of globals, which
// it interprets itself: `collections.OrderedDict()` makes a dictionary, `torch._utils._rebuild_tensor_v2`
// a tensor description, `torch.*Storage` a storage type. Anything else stops at the opcode or global,
// named in the error. Depth, stack and memo are limited, so a crafted file cannot exhaust memory or stack.
// Opcode reference: CPython's Lib/pickletools.py.

// MARK: - Values

/// A storage named by a persistent id `('storage', torch.FloatStorage, key, location, numel)`.
struct PickledStorage: Equatable {
    var dtype: TensorDType
    /// The archive entry `data/<key>` holding the bytes.
    var key: String
    var elementCount: Int
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: a view of a storage, in elements.
struct PickledTensor: Equatable {
    var storage: PickledStorage
    var offset: Int
    var shape: [Int]
    var strides: [Int]
}

/// The callables a state dict's pickle may name. Never called: REDUCE interprets them.
enum PickleGlobal: Equatable {
    case orderedDict, rebuildTensor, rebuildParameter
    case storageType(TensorDType)

    static let storageTypes: [String: TensorDType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch", _): guard let dtype = Self.storageTypes[name] else { return nil }; self = .storageType(dtype)
        default: return nil
        }
    }
}

/// A list, tuple or dictionary: a class because pickle mutates containers after memoizing them.
final class PickleContainer {
    var items: [PickleValue]
    /// Nesting depth (1 + the deepest item), kept below `Unpickler.maximumDepth`.
    var depth: Int
    init(_ items: [PickleValue], depth: Int) { self.items = items; self.depth = depth }
}

indirect enum PickleValue {
    case none, bool(Bool), int(Int), float(Double), string(String)
    case tuple(PickleContainer), list(PickleContainer)
    /// Keys and values alternate in `items`.
    case dict(PickleContainer)
    case global(PickleGlobal)
    case storage(PickledStorage)
    case tensor(PickledTensor)

    var depth: Int {
        switch self {
        case .tuple(let c), .list(let c), .dict(let c): return c.depth
        default: return 0
        }
    }

    /// What kind of value this is, for error messages (never the contents: they may be huge or cyclic).
    var kind: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int: "int"
        case .float: "float"
        case .string: "str"
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case .global: "global"
        case .storage: "storage"
        case .tensor: "tensor"
        }
    }
}

// MARK: - The interpreter

struct Unpickler {
    static let maximumDepth = 64
    static let maximumStack = 1 << 20
    static let maximumMemo = 1 << 22

    let bytes: UnsafeRawBufferPointer
    let path: String
    private var position = 0
    private var opcodeStart = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    /// Every container made, emptied at the end so that cycles a hostile pickle builds are freed.
    private var containers: [PickleContainer] = []

    init(bytes: UnsafeRawBufferPointer, path: String) { self.bytes = bytes; self.path = path }

    /// Runs the pickle to its STOP and returns what `visit` makes of the result; every container is
    /// emptied afterwards (the values must not escape, hence the closure).
    static func load<T>(_ bytes: UnsafeRawBufferPointer, path: String, _ visit: (PickleValue) throws -> T) throws -> T {
        var machine = Unpickler(bytes: bytes, path: path)
        defer { for container in machine.containers { container.items = [] } }
        let result = try machine.run()
        return try visit(result)
    }

    func malformed(_ reason: String) -> EngineError { .malformedPickle(path: path, offset: opcodeStart, reason: reason) }

    // MARK: Reading the stream

    private mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= bytes.count - position else {
            throw malformed("the pickle ends early (needs \(count) more bytes at \(position), has \(bytes.count - position))")
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }
    private mutating func byte() throws -> UInt8 { try take(1)[0] }
    private mutating func littleEndian(_ count: Int) throws -> UInt64 {
        let raw = try take(count)
        return raw.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
    private mutating func length(_ count: Int) throws -> Int {
        let value = try littleEndian(count)
        guard value <= UInt64(bytes.count - position) else { throw malformed("length \(value) exceeds the rest of the pickle") }
        return Int(value)
    }
    private mutating func utf8(_ count: Int) throws -> String {
        guard let text = String(bytes: try take(count), encoding: .utf8) else { throw malformed("string is not UTF-8") }
        return text
    }
    /// A newline-terminated ASCII line (GLOBAL's module and name).
    private mutating func line() throws -> String {
        var end = position
        while end < bytes.count, bytes[end] != 0x0A { end += 1 }
        guard end < bytes.count, end - position <= 256 else { throw malformed("GLOBAL name is unterminated or too long") }
        let text = try utf8(end - position)
        position += 1
        return text
    }

    // MARK: Stack

    private mutating func push(_ value: PickleValue) throws {
        guard stack.count < Self.maximumStack else { throw malformed("stack exceeds \(Self.maximumStack) items") }
        stack.append(value)
    }
    private mutating func pop() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0) else { throw malformed("pop from an empty stack (or across a MARK)") }
        return stack.removeLast()
    }
    /// The items above the topmost MARK, which is removed.
    private mutating func popToMark() throws -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw malformed("no MARK on the stack") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }
    private mutating func container(_ items: [PickleValue]) throws -> PickleContainer {
        let depth = 1 + (items.map(\.depth).max() ?? 0)
        guard depth <= Self.maximumDepth else { throw malformed("nesting deeper than \(Self.maximumDepth)") }
        let made = PickleContainer(items, depth: depth)
        containers.append(made)
        return made
    }
    private func grow(_ target: PickleContainer, with items: [PickleValue]) throws {
        let depth = max(target.depth, 1 + (items.map(\.depth).max() ?? 0))
        guard depth <= Self.maximumDepth else { throw malformed("nesting deeper than \(Self.maximumDepth)") }
        target.depth = depth
        target.items += items
    }
    private mutating func memoize(_ index: Int) throws {
        guard let top = stack.last else { throw malformed("memoizing from an empty stack") }
        guard memo.count < Self.maximumMemo || memo[index] != nil else { throw malformed("memo exceeds \(Self.maximumMemo) entries") }
        memo[index] = top
    }
    private mutating func recall(_ index: Int) throws {
        guard let value = memo[index] else { throw malformed("memo reference \(index) refers to nothing") }
        try push(value)
    }

    // MARK: Running

    private mutating func run() throws -> PickleValue {
        while true {
            opcodeStart = position
            let opcode = try byte()
            switch opcode {
            case 0x80: // PROTO
                let version = try byte()
                guard (2...5).contains(version) else { throw malformed("pickle protocol \(version) (2 to 5 are read)") }
            case 0x95: _ = try take(8) // FRAME: a length hint only
            case 0x2E: return try pop() // STOP
            case 0x28: marks.append(stack.count) // MARK
            case 0x7D: try push(.dict(try container([]))) // EMPTY_DICT
            case 0x5D: try push(.list(try container([]))) // EMPTY_LIST
            case 0x29: try push(.tuple(try container([]))) // EMPTY_TUPLE
            case 0x74: try push(.tuple(try container(try popToMark()))) // TUPLE
            case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
                var items: [PickleValue] = []
                for _ in 0..<Int(opcode - 0x84) { items.insert(try pop(), at: 0) }
                try push(.tuple(try container(items)))
            case 0x61: // APPEND
                let item = try pop()
                try grow(try list(try pop(keep: true)), with: [item])
            case 0x65: // APPENDS
                let items = try popToMark()
                try grow(try list(try pop(keep: true)), with: items)
            case 0x73: // SETITEM
                let value = try pop(), key = try pop()
                try grow(try dict(try pop(keep: true)), with: [key, value])
            case 0x75: // SETITEMS
                let items = try popToMark()
                guard items.count % 2 == 0 else { throw malformed("SETITEMS with an odd number of items") }
                try grow(try dict(try pop(keep: true)), with: items)
            case 0x71: try memoize(Int(try byte())) // BINPUT
            case 0x72: try memoize(Int(try littleEndian(4))) // LONG_BINPUT
            case 0x94: try memoize(memo.count) // MEMOIZE
            case 0x68: try recall(Int(try byte())) // BINGET
            case 0x6A: try recall(Int(try littleEndian(4))) // LONG_BINGET
            case 0x4A: try push(.int(Int(Int32(bitPattern: UInt32(try littleEndian(4)))))) // BININT
            case 0x4B: try push(.int(Int(try byte()))) // BININT1
            case 0x4D: try push(.int(Int(try littleEndian(2)))) // BININT2
            case 0x8A: // LONG1: little-endian two's complement of n bytes
                let count = Int(try byte())
                guard count <= 8 else { throw malformed("integer of \(count) bytes is too large") }
                let raw = try littleEndian(count)
                let shift = UInt64(64 - 8 * count)
                try push(.int(count == 0 ? 0 : Int(Int64(bitPattern: raw << shift) >> Int64(shift))))
            case 0x4E: try push(.none) // NONE
            case 0x88: try push(.bool(true)) // NEWTRUE
            case 0x89: try push(.bool(false)) // NEWFALSE
            case 0x47: // BINFLOAT: big-endian double
                let raw = try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                try push(.float(Double(bitPattern: raw)))
            case 0x58: try push(.string(try utf8(try length(4)))) // BINUNICODE
            case 0x8C: try push(.string(try utf8(try length(1)))) // SHORT_BINUNICODE
            case 0x8D: try push(.string(try utf8(try length(8)))) // BINUNICODE8
            case 0x63: // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                try push(.global(try resolve(module: module, name: name)))
            case 0x93: // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard case .string(let n) = name, case .string(let m) = module else {
                    throw malformed("STACK_GLOBAL needs two strings, got \(module.kind) and \(name.kind)")
                }
                try push(.global(try resolve(module: m, name: n)))
            case 0x51: try push(try persistentLoad(try pop())) // BINPERSID
            case 0x52: // REDUCE
                let arguments = try pop(), callable = try pop()
                try push(try reduce(callable, arguments))
            case 0x62: // BUILD: only an OrderedDict's attributes (`_metadata`), which are not needed
                let state = try pop()
                guard case .dict = try pop(keep: true), case .dict = state else {
                    throw malformed("BUILD on a \(stack.last?.kind ?? "nothing") with \(state.kind) state")
                }
            default:
                throw EngineError.forbiddenOpcode(path: path, offset: opcodeStart, opcode: Self.opcodeName(opcode))
            }
        }
    }

    /// The top of the stack, left in place when `keep` (the target of APPEND/SETITEM/BUILD).
    private mutating func pop(keep: Bool) throws -> PickleValue {
        guard let top = stack.last, stack.count > (marks.last ?? 0) else { throw malformed("no target on the stack") }
        if !keep { stack.removeLast() }
        return top
    }
    private func list(_ value: PickleValue) throws -> PickleContainer {
        guard case .list(let c) = value else { throw malformed("APPEND to a \(value.kind)") }
        return c
    }
    private func dict(_ value: PickleValue) throws -> PickleContainer {
        guard case .dict(let c) = value else { throw malformed("SETITEM on a \(value.kind)") }
        return c
    }

    private func resolve(module: String, name: String) throws -> PickleGlobal {
        guard let global = PickleGlobal(module: module, name: name) else {
            throw EngineError.forbiddenGlobal(path: path, global: "\(module).\(name)")
        }
        return global
    }

    // MARK: Interpreting the allowed globals

    /// `('storage', torch.FloatStorage, key, location, numel)`.
    private func persistentLoad(_ id: PickleValue) throws -> PickleValue {
        guard case .tuple(let tuple) = id, tuple.items.count == 5,
              case .string("storage") = tuple.items[0], case .global(.storageType(let dtype)) = tuple.items[1],
              case .string(let key) = tuple.items[2], case .int(let count) = tuple.items[4], count >= 0 else {
            throw malformed("persistent id is not ('storage', torch.<Type>Storage, key, location, numel)")
        }
        return .storage(PickledStorage(dtype: dtype, key: key, elementCount: count))
    }

    private mutating func reduce(_ callable: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        guard case .global(let global) = callable, case .tuple(let tuple) = arguments else {
            throw malformed("REDUCE of a \(callable.kind) with \(arguments.kind) arguments")
        }
        let args = tuple.items
        switch global {
        case .orderedDict:
            guard args.isEmpty else { throw malformed("OrderedDict with arguments") }
            return .dict(try container([]))
        case .rebuildTensor:
            guard args.count == 6 || args.count == 7, case .storage(let storage) = args[0], case .int(let offset) = args[1],
                  let shape = integers(args[2]), let strides = integers(args[3]) else {
                throw malformed("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, requires_grad, hooks)")
            }
            return .tensor(PickledTensor(storage: storage, offset: offset, shape: shape, strides: strides))
        case .rebuildParameter:
            guard args.count == 3, case .tensor = args[0] else { throw malformed("_rebuild_parameter arguments are not (tensor, requires_grad, hooks)") }
            return args[0]
        case .storageType:
            throw malformed("a storage type is called")
        }
    }

    private func integers(_ value: PickleValue) -> [Int]? {
        guard case .tuple(let tuple) = value else { return nil }
        var result: [Int] = []
        for item in tuple.items {
            guard case .int(let n) = item else { return nil }
            result.append(n)
        }
        return result
    }

    /// pickletools' name of an opcode, for the refusal message.
    static func opcodeName(_ opcode: UInt8) -> String {
        let names: [UInt8: String] = [
            0x49: "INT", 0x4C: "LONG", 0x53: "STRING", 0x56: "UNICODE", 0x46: "FLOAT", 0x50: "PERSID",
            0x69: "INST", 0x6F: "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
            0x32: "DUP", 0x30: "POP", 0x31: "POP_MARK", 0x67: "GET", 0x70: "PUT", 0x6C: "LIST", 0x64: "DICT",
            0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES", 0x8E: "BINBYTES8",
            0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER", 0x8F: "EMPTY_SET", 0x90: "ADDITEMS",
            0x91: "FROZENSET", 0x8B: "LONG4",
        ]
        let hex = "0x" + String(opcode, radix: 16, uppercase: true)
        return names[opcode].map { "\($0) (\(hex))" } ?? "unknown opcode \(hex)"
    }
}
