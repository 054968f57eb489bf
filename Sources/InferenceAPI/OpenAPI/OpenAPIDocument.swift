// The OpenAPI 3.1 document served at GET /openapi.json. Edit the JSON here; ServiceTests checks that it
// parses and lists every route.
enum OpenAPIDocument {
    static let json = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "gptneo-server",
    "version": "0.1.0",
    "description": "OpenAI-compatible Completions API for GPT-Neo checkpoints, plus vLLM's tokenizer endpoints, health, readiness and Prometheus metrics. When API keys are configured, every /v1/* request needs 'Authorization: Bearer KEY'."
  },
  "servers": [{"url": "http://127.0.0.1:8000"}],
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "headers": {
      "RetryAfter": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}
    },
    "responses": {
      "BadRequest": {"description": "Invalid JSON or an invalid field; 'param' names the field.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
      "Unauthorized": {"description": "Missing or wrong API key.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
      "NotFound": {"description": "Unknown model.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
      "MethodNotAllowed": {"description": "Wrong method; 'Allow' lists the right one.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
      "PayloadTooLarge": {"description": "The body exceeds the server's limit.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
      "Overloaded": {"description": "Too many requests are waiting.", "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
      "Unavailable": {"description": "The model is loading or the server is draining.", "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    },
    "schemas": {
      "ErrorResponse": {
        "type": "object",
        "required": ["error"],
        "properties": {
          "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
              "message": {"type": "string"},
              "type": {"type": "string"},
              "param": {"type": ["string", "null"]},
              "code": {"type": ["string", "null"]}
            }
          }
        }
      },
      "TokenID": {"type": "integer", "minimum": 0, "maximum": 50256, "description": "An id of GPT-Neo's vocabulary (50257 ids, as GPT-2's)."},
      "TokenIDs": {"type": "array", "items": {"$ref": "#/components/schemas/TokenID"}, "minItems": 1},
      "CompletionRequest": {
        "type": "object",
        "required": ["prompt"],
        "description": "OpenAI's Completions request. Unknown fields are ignored; null means absent. Prompt tokens + max_tokens must fit the model's context (max_model_len of /v1/models), and best_of must be at least n.",
        "if": {"required": ["stream_options"], "properties": {"stream_options": {"type": "object"}}},
        "then": {"required": ["stream"], "properties": {"stream": {"const": true}}},
        "properties": {
          "model": {"type": ["string", "null"], "description": "Must be the served model's id when given."},
          "prompt": {
            "description": "A string, strings, token ids, or arrays of token ids. Each prompt gives n choices, indexed prompt-major.",
            "oneOf": [
              {"type": "string", "minLength": 1},
              {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 32},
              {"$ref": "#/components/schemas/TokenIDs"},
              {"type": "array", "items": {"$ref": "#/components/schemas/TokenIDs"}, "minItems": 1, "maxItems": 32}
            ]
          },
          "max_tokens": {"type": ["integer", "null"], "minimum": 0, "default": 16, "description": "0 only with echo (scores the prompt). Prompt + max_tokens must fit the context."},
          "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2, "description": "Absent: the model's generation_config.json value, else 1."},
          "top_p": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1, "description": "Absent: the model's generation_config.json value, else 1."},
          "n": {"type": ["integer", "null"], "minimum": 1, "maximum": 16, "default": 1},
          "best_of": {"type": ["integer", "null"], "minimum": 1, "maximum": 16, "description": "At least n; the n best by cumulative logprob are returned. Not with stream."},
          "stream": {"type": ["boolean", "null"], "default": false},
          "stream_options": {
            "type": ["object", "null"],
            "description": "Only with stream: true.",
            "properties": {"include_usage": {"type": ["boolean", "null"]}}
          },
          "logprobs": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
          "echo": {"type": ["boolean", "null"], "default": false},
          "stop": {
            "oneOf": [
              {"type": "null"},
              {"type": "string", "minLength": 1},
              {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4}
            ]
          },
          "presence_penalty": {"type": ["number", "null"], "minimum": -2, "maximum": 2, "default": 0},
          "frequency_penalty": {"type": ["number", "null"], "minimum": -2, "maximum": 2, "default": 0},
          "logit_bias": {
            "type": ["object", "null"],
            "description": "Token id (as a string) to a bias added to its logit.",
            "propertyNames": {"pattern": "^([0-9]|[1-9][0-9]{1,3}|[1-4][0-9]{4}|50[01][0-9]{2}|502[0-4][0-9]|5025[0-6])$"},
            "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}
          },
          "seed": {"type": ["integer", "null"]},
          "user": {"type": ["string", "null"]},
          "suffix": {"type": ["string", "null"], "description": "Not supported: any non-empty value is rejected with 400."},
          "top_k": {"type": ["integer", "null"], "minimum": -1, "description": "Extension (vLLM). -1 or 0: off. Absent: the model's generation_config.json value, else off."},
          "repetition_penalty": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 10, "description": "Extension (transformers' formula). 1: off. Absent: the model's generation_config.json value, else 1."},
          "ignore_eos": {"type": ["boolean", "null"], "default": false, "description": "Extension: keep generating after <|endoftext|>."}
        }
      },
      "Logprobs": {
        "type": "object",
        "required": ["tokens", "token_logprobs", "top_logprobs", "text_offset"],
        "properties": {
          "tokens": {"type": "array", "items": {"type": "string"}},
          "token_logprobs": {"type": "array", "items": {"type": ["number", "null"]}},
          "top_logprobs": {"type": "array", "items": {"type": ["object", "null"], "additionalProperties": {"type": "number"}}},
          "text_offset": {"type": "array", "items": {"type": "integer"}}
        }
      },
      "Choice": {
        "type": "object",
        "required": ["text", "index", "logprobs", "finish_reason"],
        "properties": {
          "text": {"type": "string"},
          "index": {"type": "integer", "minimum": 0},
          "logprobs": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Logprobs"}]},
          "finish_reason": {"enum": ["stop", "length", null]}
        }
      },
      "Usage": {
        "type": "object",
        "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
        "properties": {
          "prompt_tokens": {"type": "integer", "minimum": 0},
          "completion_tokens": {"type": "integer", "minimum": 0},
          "total_tokens": {"type": "integer", "minimum": 0}
        }
      },
      "Completion": {
        "type": "object",
        "description": "The whole response; when streaming, each 'data:' event carries one chunk of this shape (usage null or absent until the last chunk).",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
          "id": {"type": "string"},
          "object": {"const": "text_completion"},
          "created": {"type": "integer"},
          "model": {"type": "string"},
          "system_fingerprint": {"type": "string"},
          "choices": {"type": "array", "items": {"$ref": "#/components/schemas/Choice"}},
          "usage": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Usage"}]}
        }
      },
      "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
          "id": {"type": "string"},
          "object": {"const": "model"},
          "created": {"type": "integer"},
          "owned_by": {"type": "string"},
          "root": {"type": "string"},
          "parent": {"type": "null"},
          "max_model_len": {"type": "integer"}
        }
      },
      "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
    }
  },
  "security": [{"bearer": []}, {}],
  "paths": {
    "/v1/completions": {
      "post": {
        "operationId": "createCompletion",
        "summary": "Complete prompts (OpenAI Completions API).",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CompletionRequest"}}}},
        "responses": {
          "200": {
            "description": "A completion, or with stream: true server-sent events 'data: {chunk}' ending with 'data: [DONE]'.",
            "content": {
              "application/json": {"schema": {"$ref": "#/components/schemas/Completion"}},
              "text/event-stream": {"schema": {
                "description": "One server-sent event: 'data' is a Completion chunk as JSON, an error object as JSON, or '[DONE]'.",
                "type": "object", "required": ["data"], "properties": {"data": {"type": "string"}, "event": {"type": "string"}}
              }}
            }
          },
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "405": {"$ref": "#/components/responses/MethodNotAllowed"},
          "413": {"$ref": "#/components/responses/PayloadTooLarge"},
          "429": {"$ref": "#/components/responses/Overloaded"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v1/models": {
      "get": {
        "operationId": "listModels",
        "summary": "The served model, in OpenAI's list format.",
        "responses": {
          "200": {"description": "The model list.", "content": {"application/json": {"schema": {
            "type": "object", "required": ["object", "data"],
            "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}
          }}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v1/models/{model}": {
      "get": {
        "operationId": "retrieveModel",
        "summary": "One model by id.",
        "parameters": [{"name": "model", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {
          "200": {"description": "The model.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Model"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v1/tokenize": {
      "post": {
        "operationId": "tokenize",
        "summary": "Text to token ids (vLLM's extension).",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
          "type": "object", "required": ["prompt"],
          "properties": {"model": {"type": ["string", "null"]}, "prompt": {"type": "string"}}
        }}}},
        "responses": {
          "200": {"description": "The ids.", "content": {"application/json": {"schema": {
            "type": "object", "required": ["tokens", "count", "max_model_len"],
            "properties": {"tokens": {"type": "array", "items": {"type": "integer"}}, "count": {"type": "integer"}, "max_model_len": {"type": "integer"}}
          }}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "413": {"$ref": "#/components/responses/PayloadTooLarge"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/v1/detokenize": {
      "post": {
        "operationId": "detokenize",
        "summary": "Token ids to text (vLLM's extension).",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
          "type": "object", "required": ["tokens"],
          "properties": {"model": {"type": ["string", "null"]}, "tokens": {"type": "array", "items": {"$ref": "#/components/schemas/TokenID"}}}
        }}}},
        "responses": {
          "200": {"description": "The text.", "content": {"application/json": {"schema": {
            "type": "object", "required": ["prompt"], "properties": {"prompt": {"type": "string"}}
          }}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "413": {"$ref": "#/components/responses/PayloadTooLarge"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/healthz": {
      "get": {
        "operationId": "health",
        "summary": "Liveness: 200 while the process is alive.",
        "security": [],
        "responses": {"200": {"description": "Alive.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}}
      }
    },
    "/readyz": {
      "get": {
        "operationId": "ready",
        "summary": "Readiness: 200 once the model is loaded and warmed up; 503 before that and while draining.",
        "security": [],
        "responses": {
          "200": {"description": "Ready.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}},
          "503": {"description": "Loading, warming up or draining.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}
        }
      }
    },
    "/metrics": {
      "get": {
        "operationId": "metrics",
        "summary": "Prometheus text format: requests, latencies, tokens, queue, batch, KV cache, memory.",
        "security": [{"bearer": []}, {}],
        "responses": {
          "200": {"description": "Metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"}
        }
      }
    },
    "/openapi.json": {
      "get": {
        "operationId": "openapi",
        "summary": "This document.",
        "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}}
      }
    }
  }
}
"""#
}
