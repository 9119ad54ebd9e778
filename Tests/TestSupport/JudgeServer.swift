// A small OpenAI-compatible judge for tests, served on loopback with Hummingbird: POST
// /v1/chat/completions answers "Score: N" with N = (UTF-8 length of the user message) mod 7, a
// deterministic rule tests can recompute (pairwise: `.prefer` answers "Verdict: A|B|tie" by a
// shorter-wins rule, optionally position-biased). Scripted faults (slow replies, 429 with Retry-After,
// 5xx, garbage bodies, unparseable verdicts, hanging) replace the next replies in order; after
// the script, `fallback` answers. It records every user message and Authorization header.

import Foundation
import Hummingbird
import NIOCore

public final class JudgeServer: @unchecked Sendable {
    public enum Reply: Sendable, Equatable {
        case score
        case slow(Double)
        case status(Int, retryAfter: String?)
        case garbage
        case unparseable
        /// No reply until the server stops.
        case hang
        /// Pairwise: "Verdict: V" with V = `verdict(of:biased:)`.
        case prefer(biased: Bool)
        /// A chat completion with this text.
        case text(String)
    }

    private let lock = NSLock()
    private var script: [Reply] = []
    private var fallbackReply: Reply = .score
    private var messages: [String] = []
    private var authorizations: [String?] = []
    private var stopping = false
    private var task: Task<Void, Error>?
    private var boundPort: Int?
    /// Requests answered with `.score` before the fallback applies (nil: always the fallback rule).
    private var answerFirst: Int?

    public init() {}

    /// The expected score of a user message.
    public static func score(of message: String) -> Int { message.utf8.count % 7 }

    /// The pairwise verdict about a user message holding `<A>response a</A>` and `<B>response b</B>`:
    /// the shorter response (UTF-8 bytes) wins, then the one whose bytes sort first; identical
    /// responses tie. `biased` answers "A" whenever the sum of both responses' bytes is a multiple
    /// of 3 (the same for either order: a position-biased judge that disagrees with itself).
    public static func verdict(of message: String, biased: Bool) -> String {
        let (a, b) = pairwiseResponses(message)
        let x = Array(a.utf8), y = Array(b.utf8)
        if biased && (x + y).reduce(0, { $0 + Int($1) }) % 3 == 0 { return "A" }
        if x == y { return "tie" }
        if x.count != y.count { return x.count < y.count ? "A" : "B" }
        return x.lexicographicallyPrecedes(y) ? "A" : "B"
    }

    /// Responses A and B of a pairwise user message (between the first `<A>` and the last `</A>`,
    /// and the first `<B>` after it and the last `</B>`).
    public static func pairwiseResponses(_ m: String) -> (String, String) {
        guard let a0 = m.range(of: "<A>"), let a1 = m.range(of: "</A>", options: .backwards),
              let b0 = m.range(of: "<B>", range: a1.upperBound..<m.endIndex), let b1 = m.range(of: "</B>", options: .backwards),
              a0.upperBound <= a1.lowerBound, b0.upperBound <= b1.lowerBound else { return ("", "") }
        return (String(m[a0.upperBound..<a1.lowerBound]), String(m[b0.upperBound..<b1.lowerBound]))
    }

    public var port: Int { lock.withLock { boundPort ?? 0 } }
    public var url: String { "http://127.0.0.1:\(port)/v1/chat/completions" }
    public var requests: [String] { lock.withLock { messages } }
    public var authorizationHeaders: [String?] { lock.withLock { authorizations } }

    /// Replies used in order for the next requests.
    public func script(_ replies: [Reply]) { lock.withLock { script = replies } }
    /// The reply after the script; with `after: n`, the first n requests get `.score` first.
    public func fallback(_ r: Reply, after n: Int? = nil) { lock.withLock { fallbackReply = r; answerFirst = n } }

    private func next(_ message: String, _ auth: String?) -> Reply {
        lock.withLock {
            messages.append(message); authorizations.append(auth)
            if !script.isEmpty { return script.removeFirst() }
            if let n = answerFirst, messages.count <= n { return .score }
            return fallbackReply
        }
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    /// Starts listening on 127.0.0.1 (a free port); returns once it accepts connections.
    public func start() async throws {
        let router = Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 22)
            let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
            let content = ((object?["messages"] as? [[String: Any]])?.last?["content"] as? String) ?? ""
            return try await self.answer(self.next(content, request.headers[.authorization]), content)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in self.lock.withLock { self.boundPort = channel.localAddress?.port } })
        task = Task { try await app.run() }
        for _ in 0..<600 where port == 0 { try await Task.sleep(for: .milliseconds(10)) }
        if port == 0 { throw CancellationError() }
    }

    /// Stops the server (hanging requests end at once).
    public func stop() async {
        lock.withLock { stopping = true }
        task?.cancel()
        _ = try? await task?.value
    }

    private func answer(_ reply: Reply, _ content: String) async throws -> Response {
        switch reply {
        case .score: return Self.completion("Score: \(Self.score(of: content))")
        case .unparseable: return Self.completion("I would rather not say.")
        case .text(let t): return Self.completion(t)
        case .prefer(let biased): return Self.completion("Verdict: \(Self.verdict(of: content, biased: biased))")
        case .garbage: return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "<html>upstream error</html>")))
        case .slow(let s):
            try await Task.sleep(for: .milliseconds(Int(s * 1000)))
            return Self.completion("Score: \(Self.score(of: content))")
        case .hang:
            while !isStopping { try await Task.sleep(for: .milliseconds(50)) }
            return Response(status: .serviceUnavailable)
        case .status(let code, let after):
            var headers = HTTPFields()
            if let after { headers[.init("Retry-After")!] = after }
            return Response(status: .init(code: code), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: #"{"error": {"message": "scripted", "type": "test"}}"#)))
        }
    }

    static func completion(_ text: String) -> Response {
        let object: [String: Any] = ["id": "cmpl-test", "object": "chat.completion", "model": "judge",
                                     "choices": [["index": 0, "finish_reason": "stop", "message": ["role": "assistant", "content": text]]]]
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// A listener on 127.0.0.1 that accepts connections, reads a little and closes them (a dropped
/// connection). Returns its port and a function that closes it.
public func droppingListener() throws -> (port: Int, close: @Sendable () -> Void) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { close(fd); throw POSIXError(.EADDRINUSE) }
    let port = Int(UInt16(bigEndian: addr.sin_port))
    Thread.detachNewThread {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { return }
            var buf = [UInt8](repeating: 0, count: 4096)
            _ = read(c, &buf, buf.count)
            close(c)
        }
    }
    return (port, { shutdown(fd, Int32(SHUT_RDWR)); close(fd) })
}

/// Runs blocking work on a Dispatch thread, off Swift's cooperative pool (which serves the judge).
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        DispatchQueue.global().async { c.resume(with: Result { try body() }) }
    }
}
