// The one error type of the Templates module.

/// A template that cannot be parsed or rendered, or that raised (`raise_exception`).
public struct TemplateError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure.
    public enum Code: Sendable {
        /// Malformed template source.
        case syntax
        /// A construct outside the supported Jinja subset.
        case unsupported
        /// An operation failed while rendering (wrong types, undefined values, ...).
        case runtime
        /// The template called `raise_exception(message)`.
        case raised
        /// The model directory's template files are missing or malformed.
        case loading
    }

    public let code: Code
    /// For `.raised`, exactly the template's message; otherwise what went wrong.
    public let message: String
    /// The template's name (its file or the model directory).
    public let template: String
    /// 1-based position in the template source (0 when unknown).
    public let line: Int
    public let column: Int

    init(_ code: Code, _ message: String, template: String, line: Int = 0, column: Int = 0) {
        self.code = code
        self.message = message
        self.template = template
        self.line = line
        self.column = column
    }

    /// `raise_exception` errors are the template's own message (what transformers reports);
    /// other errors name the template and position.
    public var description: String {
        switch code {
        case .raised: return message
        case .loading: return "\(template): \(message)"
        default: return "chat template \(template):\(line):\(column): \(message)"
        }
    }
}
