// MARK: - /openapi.json from the route table

/// What an operation's documentation adds to the route table: names, words and schemas. The error
/// answers, security and path parameters follow from the endpoint itself (`OpenAPIDocument.operation`).
struct OperationDocumentation: Sendable {
    var operationID: String
    var summary: String
    /// The JSON body's schema in `components/schemas`; nil when the operation takes no body.
    var requestSchema: String?
    var successDescription: String
    /// The 200 answer's schema by media type.
    var successContent: [(mediaType: String, schema: JSONValue)]
    /// Answers the endpoint's properties do not imply (the 503 body of /readyz).
    var extraResponses: [(status: String, response: JSONValue)] = []

    static func schema(_ name: String) -> JSONValue { .object(["$ref": .string("#/components/schemas/" + name)]) }
}

/// The OpenAPI 3.1 document served at `GET /openapi.json`: `OpenAPIComponents` plus one operation per
/// endpoint of `InferenceService.endpoints`, so that no route goes undocumented.
enum OpenAPIDocument {
    static let document = build(endpoints: InferenceService.endpoints)
    static let encoded = document.encoded

    static func build(endpoints: [Endpoint]) -> JSONValue {
        // The components are a constant of this file's module: failing to parse them is a programmer error.
        guard case .object(var root) = try! JSONParser.parse(Array(OpenAPIComponents.json.utf8)) else {
            preconditionFailure("OpenAPIComponents.json is not an object")
        }
        var paths = JSONObject()
        for endpoint in endpoints {
            var item: JSONObject = if case .object(let existing)? = paths[endpoint.documentedPath] { existing } else { [:] }
            item[endpoint.method.lowercased()] = operation(endpoint)
            paths[endpoint.documentedPath] = .object(item)
        }
        root["paths"] = .object(paths)
        return .object(root)
    }

    static func operation(_ endpoint: Endpoint) -> JSONValue {
        let doc = endpoint.documentation
        var operation: JSONObject = ["operationId": .string(doc.operationID), "summary": .string(doc.summary)]
        let parameters = endpoint.documentedPath.split(separator: "/").filter { $0.hasPrefix("{") }.map { segment in
            JSONValue.object(["name": .string(String(segment.dropFirst().dropLast())), "in": "path", "required": .bool(true),
                              "schema": .object(["type": "string"])])
        }
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if let request = doc.requestSchema {
            operation["requestBody"] = .object(["required": .bool(true),
                                                "content": .object(["application/json": .object(["schema": OperationDocumentation.schema(request)])])])
        }
        switch endpoint.access {
        case .open: operation["security"] = .array([])
        case .apiKey, .metrics: break  // the document's default: a bearer key, or none when the server has no keys
        }
        var content = JSONObject()
        for (mediaType, schema) in doc.successContent { content[mediaType] = .object(["schema": schema]) }
        var responses: JSONObject = ["200": .object(["description": .string(doc.successDescription), "content": .object(content)])]
        func shared(_ status: String, _ name: String) { responses[status] = .object(["$ref": .string("#/components/responses/" + name)]) }
        if doc.requestSchema != nil { shared("400", "BadRequest") }
        if endpoint.access != .open { shared("401", "Unauthorized") }
        if case .model = endpoint.answer {
            shared("404", "NotFound")
            if doc.requestSchema != nil { shared("413", "PayloadTooLarge"); shared("429", "Overloaded") }
            shared("503", "Unavailable")
        }
        for (status, response) in doc.extraResponses { responses[status] = response }
        operation["responses"] = .object(responses)
        return .object(operation)
    }
}
