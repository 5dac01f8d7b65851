package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"
)

// TestOpenAIGoClient: the official Go client runs a completion, a chat completion and
// a streamed chat completion; the stream gives the same text as the plain request for
// the same seed.
func TestOpenAIGoClient(t *testing.T) {
	g := loadGolden(t)
	ts := newTestServer(t, serverOpts{cfg: Config{APIKeys: []string{"sk-test"}}, quiet: true})
	client := openai.NewClient(option.WithBaseURL(ts.url+"/v1/"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Greedy completion: the golden continuation.
	c := g.Cases[0]
	comp, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model:       testModel,
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(c.Prompt)},
		MaxTokens:   openai.Int(int64(len(c.GreedyIDs))),
		Temperature: openai.Float(0),
	}, option.WithJSONSet("ignore_eos", true))
	require.NoError(t, err)
	require.Len(t, comp.Choices, 1)
	require.Equal(t, strings.ReplaceAll(c.GreedyText, "<0x0A>", "\n"), comp.Choices[0].Text)
	require.Equal(t, openai.CompletionChoiceFinishReasonLength, comp.Choices[0].FinishReason)
	require.Equal(t, int64(len(c.PromptIDs)), comp.Usage.PromptTokens)
	require.Equal(t, int64(len(c.GreedyIDs)), comp.Usage.CompletionTokens)

	// Sampled chat completion, then the same request streamed.
	params := openai.ChatCompletionNewParams{
		Model:       testModel,
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You tell stories."), openai.UserMessage("Tell me about a cat.")},
		MaxTokens:   openai.Int(40),
		Temperature: openai.Float(0.8),
		TopP:        openai.Float(0.95),
		Seed:        openai.Int(1234),
	}
	chat, err := client.Chat.Completions.New(ctx, params)
	require.NoError(t, err)
	require.Len(t, chat.Choices, 1)
	text := chat.Choices[0].Message.Content
	require.NotEmpty(t, text)
	require.Equal(t, "assistant", string(chat.Choices[0].Message.Role))
	require.Equal(t, int64(40), chat.Usage.CompletionTokens)

	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	var streamed strings.Builder
	chunks := 0
	for stream.Next() {
		ch := stream.Current()
		require.True(t, acc.AddChunk(ch))
		if len(ch.Choices) > 0 {
			streamed.WriteString(ch.Choices[0].Delta.Content)
			chunks++
		}
	}
	require.NoError(t, stream.Err())
	require.NoError(t, stream.Close())
	require.Equal(t, text, streamed.String(), "streamed text equals the plain response for the same seed")
	require.Equal(t, text, acc.Choices[0].Message.Content)
	require.Equal(t, "length", acc.Choices[0].FinishReason)
	require.Equal(t, chat.Usage.CompletionTokens, acc.Usage.CompletionTokens)
	require.Equal(t, chat.Usage.PromptTokens, acc.Usage.PromptTokens)
	require.Greater(t, chunks, 10, "one chunk per token")

	// Errors come back as the client's typed API error.
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "nope", Messages: params.Messages})
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 404, apiErr.StatusCode)
	require.Equal(t, "model", apiErr.Param)
	require.Contains(t, apiErr.Message, `"nope" does not exist`)

	// And the models list.
	models, err := client.Models.List(ctx)
	require.NoError(t, err)
	require.Len(t, models.Data, 1)
	require.Equal(t, testModel, models.Data[0].ID)
	ts.waitIdle(t, 5*time.Second)
}
