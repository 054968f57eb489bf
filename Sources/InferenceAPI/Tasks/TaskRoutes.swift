import Foundation
import HTTPServer

// Plugs the task endpoints into the API through its extension point (`APIConfiguration.extraRoutes`),
// so they get the same API keys, readiness gating, 404/405 answers and metrics as the built-in ones.
// The routes exist from the start; the task context (heads, pooling) is installed once the model is
// loaded, before the service turns ready.

/// Holds the loaded model's task side for the task routes.
public final class TaskRoutes: Sendable {
    private let installed = Locked<TaskServingContext?>(nil)

    public init() {}

    /// `POST` routes for /v1/classify, /v1/classify-tokens, /v1/answer and /v1/embeddings.
    public var routes: [ExtraRoute] {
        TaskEndpoints.paths.sorted().map { path in
            ExtraRoute(method: "POST", path: path) { [self] request, _ in
                guard let context = installed.withLock({ $0 }) else {
                    return APIError.unavailable("The task endpoints are not set up yet; retry shortly.").response
                }
                return await TaskEndpoints.handle(request, context: context)
                    ?? APIError.notFound("No route for \(request.path).").response
            }
        }
    }

    /// Makes the task endpoints answer for `context` (call before the service starts).
    public func install(_ context: TaskServingContext) {
        installed.withLock { $0 = context }
    }

    /// The installed context, if any.
    public var context: TaskServingContext? { installed.withLock { $0 } }
}
