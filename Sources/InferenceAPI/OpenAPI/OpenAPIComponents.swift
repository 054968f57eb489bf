// The parts of the OpenAPI 3.1 document that the route table does not give: the header, the shared
// answers and every request and response schema. The paths follow from `InferenceService.endpoints`
// (see OpenAPIDocument.swift).
enum OpenAPIComponents {
    static let json = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "gptneo-server",
    "version": "0.1.0",
    "description": "OpenAI-compatible Completions and Embeddings APIs for GPT-Neo checkpoints, plus vLLM's tokenizer endpoints, classification and question answering with task heads, health, readiness and Prometheus metrics. When API keys are configured, every /v1/* request needs 'Authorization: Bearer KEY'."
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
          "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2, "default": 1},
          "top_p": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1, "default": 1},
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
          "top_k": {"type": ["integer", "null"], "minimum": -1, "description": "Extension (vLLM). -1 or 0: off."},
          "repetition_penalty": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 10, "default": 1, "description": "Extension (transformers' formula). 1: off."},
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
          "max_model_len": {"type": "integer"},
          "weight_format": {"enum": ["float32", "float16", "bfloat16", "int8"], "description": "how the weight matrices are kept in memory (--dtype, --quantization)"},
          "weight_bytes": {"type": "integer", "description": "bytes of all weights in memory"}
        }
      },
      "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
      "ModelList": {
        "type": "object", "required": ["object", "data"],
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}
      },
      "TokenizeRequest": {
        "type": "object", "required": ["prompt"],
        "properties": {"model": {"type": ["string", "null"]}, "prompt": {"type": "string"}}
      },
      "TokenizeResponse": {
        "type": "object", "required": ["tokens", "count", "max_model_len"],
        "properties": {"tokens": {"type": "array", "items": {"type": "integer"}}, "count": {"type": "integer"}, "max_model_len": {"type": "integer"}}
      },
      "DetokenizeRequest": {
        "type": "object", "required": ["tokens"],
        "properties": {"model": {"type": ["string", "null"]}, "tokens": {"type": "array", "items": {"$ref": "#/components/schemas/TokenID"}}}
      },
      "DetokenizeResponse": {"type": "object", "required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
      "TextInput": {
        "description": "One text or several (at most 256); each must tokenize to 1 to max_model_len tokens.",
        "oneOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 256}]
      },
      "PromptUsage": {
        "type": "object", "required": ["prompt_tokens", "total_tokens"],
        "properties": {"prompt_tokens": {"type": "integer", "minimum": 0}, "total_tokens": {"type": "integer", "minimum": 0}}
      },
      "EmbeddingsRequest": {
        "type": "object", "required": ["input"],
        "description": "OpenAI's embeddings request. The vectors pool the final hidden states as the server is configured (mean, weightedmean or last).",
        "properties": {
          "model": {"type": ["string", "null"]},
          "input": {"oneOf": [
            {"$ref": "#/components/schemas/TextInput"},
            {"$ref": "#/components/schemas/TokenIDs"},
            {"type": "array", "items": {"$ref": "#/components/schemas/TokenIDs"}, "minItems": 1, "maxItems": 256}
          ]},
          "encoding_format": {"type": ["string", "null"], "enum": ["float", "base64", null], "default": "float"},
          "dimensions": {"type": ["integer", "null"], "description": "Not supported: any value is rejected with 400."},
          "user": {"type": ["string", "null"]}
        }
      },
      "EmbeddingsResponse": {
        "type": "object", "required": ["object", "data", "model", "usage"],
        "properties": {
          "object": {"const": "list"},
          "data": {"type": "array", "items": {
            "type": "object", "required": ["object", "index", "embedding"],
            "properties": {
              "object": {"const": "embedding"},
              "index": {"type": "integer", "minimum": 0},
              "embedding": {"oneOf": [{"type": "array", "items": {"type": "number"}}, {"type": "string", "description": "base64 of little-endian float32"}]}
            }
          }},
          "model": {"type": "string"},
          "usage": {"$ref": "#/components/schemas/PromptUsage"}
        }
      },
      "ClassifyRequest": {
        "type": "object", "required": ["input"],
        "description": "Sequence classification with the model's classification head (transformers' text-classification pipeline).",
        "properties": {
          "model": {"type": ["string", "null"]},
          "input": {"$ref": "#/components/schemas/TextInput"},
          "top_k": {"type": ["integer", "null"], "minimum": 1, "description": "Labels per input; absent: 1, null: every label."},
          "function_to_apply": {"type": ["string", "null"], "enum": ["softmax", "sigmoid", "none", null]}
        }
      },
      "ClassifyResponse": {
        "type": "object", "required": ["object", "model", "data", "usage"],
        "properties": {
          "object": {"const": "list"},
          "model": {"type": "string"},
          "data": {"type": "array", "items": {
            "type": "object", "required": ["index", "label", "score", "scores"],
            "properties": {
              "index": {"type": "integer", "minimum": 0},
              "label": {"type": "string"},
              "score": {"type": "number"},
              "scores": {"type": "array", "items": {"type": "object", "required": ["label", "score"], "properties": {"label": {"type": "string"}, "score": {"type": "number"}}}}
            }
          }},
          "usage": {"$ref": "#/components/schemas/PromptUsage"}
        }
      },
      "ClassifyTokensRequest": {
        "type": "object", "required": ["input"],
        "description": "Token classification with the model's token-classification head (transformers' token-classification pipeline).",
        "properties": {
          "model": {"type": ["string", "null"]},
          "input": {"$ref": "#/components/schemas/TextInput"},
          "aggregation_strategy": {"type": ["string", "null"], "enum": ["none", "simple", "first", "average", "max", null], "default": "none"},
          "ignore_labels": {"type": ["array", "null"], "items": {"type": "string"}, "description": "Labels left out; default [\"O\"]."}
        }
      },
      "ClassifyTokensResponse": {
        "type": "object", "required": ["object", "model", "data", "usage"],
        "properties": {
          "object": {"const": "list"},
          "model": {"type": "string"},
          "data": {"type": "array", "items": {
            "type": "object", "required": ["index", "entities"],
            "properties": {
              "index": {"type": "integer", "minimum": 0},
              "entities": {"type": "array", "items": {
                "type": "object", "required": ["score", "word", "start", "end"],
                "properties": {
                  "entity": {"type": "string"}, "entity_group": {"type": "string"}, "score": {"type": "number"},
                  "index": {"type": "integer"}, "word": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"}
                }
              }}
            }
          }},
          "usage": {"$ref": "#/components/schemas/PromptUsage"}
        }
      },
      "AnswerRequest": {
        "type": "object", "required": ["question", "context"],
        "description": "Extractive question answering with the model's QA head (transformers' question-answering pipeline). Several questions share one context, or pair with as many contexts.",
        "properties": {
          "model": {"type": ["string", "null"]},
          "question": {"$ref": "#/components/schemas/TextInput"},
          "context": {"$ref": "#/components/schemas/TextInput"},
          "top_k": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000, "default": 1},
          "max_answer_len": {"type": ["integer", "null"], "minimum": 1, "maximum": 100000, "default": 15},
          "max_seq_len": {"type": ["integer", "null"], "minimum": 1, "description": "At most max_model_len; default min(384, max_model_len)."},
          "doc_stride": {"type": ["integer", "null"], "minimum": 0, "description": "At most max_seq_len; default min(max_seq_len / 2, 128). At most 1024 windows per request."},
          "handle_impossible_answer": {"type": ["boolean", "null"], "default": false}
        }
      },
      "AnswerResponse": {
        "type": "object", "required": ["object", "model", "data", "usage"],
        "properties": {
          "object": {"const": "list"},
          "model": {"type": "string"},
          "data": {"type": "array", "items": {
            "type": "object", "required": ["index", "answers"],
            "properties": {
              "index": {"type": "integer", "minimum": 0},
              "answers": {"type": "array", "items": {
                "type": "object", "required": ["score", "start", "end", "answer"],
                "properties": {"score": {"type": "number"}, "start": {"type": "integer"}, "end": {"type": "integer"}, "answer": {"type": "string"}}
              }}
            }
          }},
          "usage": {"$ref": "#/components/schemas/PromptUsage"}
        }
      }
    }
  },
  "security": [{"bearer": []}, {}]
}
"""#
}
