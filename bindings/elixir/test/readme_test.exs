defmodule ConnReg.ReadmeTest do
  # The iex session in the top-level README.md, replayed twice: each "iex>"
  # line evaluated in turn here (aliases and variables carry over), and the
  # whole session typed into a real `iex -S mix`; each result is compared
  # with the lines the README shows, pids and references aside.
  # Not async: the session starts the default-named ConnectionRegistry.
  use ExUnit.Case, async: false
  import ConnRegTest.Helpers

  @readme Path.expand("../../../README.md", __DIR__)
  @marker "<!-- tested by bindings/elixir/test/readme_test.exs -->"

  test "the README's iex session" do
    steps = session(File.read!(@readme))
    assert length(steps) >= 10
    seg = segment("readme")

    Enum.reduce(steps, {[], Code.env_for_eval(file: "README.md")}, fn {expr, expected},
                                                                       {binding, env} ->
      code = substitute(expr, seg)
      {value, binding, env} = Code.eval_quoted_with_env(Code.string_to_quoted!(code), binding, env)
      assert normalize(inspect(value)) == normalize(expected), "README: iex> #{expr}"
      {binding, env}
    end)

    GenServer.stop(ConnReg.ConnectionRegistry)
  end

  test "the README's iex session, typed into iex -S mix" do
    steps = session(File.read!(@readme))
    seg = segment("readme-iex")
    input = Path.join(System.tmp_dir!(), "crx-iex-#{System.pid()}-#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm(input) end)
    File.write!(input, Enum.map_join(steps, fn {expr, _} -> substitute(expr, seg) <> "\n" end))

    # As the README says: `cd bindings/elixir && iex -S mix` (stdin is the session).
    {out, 0} =
      System.cmd("sh", ["-c", ~s(exec iex -S mix < "$1"), "sh", input],
        cd: Path.expand("..", __DIR__),
        env: [{"MIX_ENV", to_string(Mix.env())}],
        stderr_to_stdout: true
      )

    # The banner, one result after each prompt, and the prompt that met the end of input.
    [_banner | results] = Regex.split(~r/iex\(\d+\)> /, out)
    assert length(results) == length(steps) + 1, out
    assert String.trim(List.last(results)) == "", out

    for {{expr, expected}, got} <- Enum.zip(steps, results) do
      assert normalize(String.trim(got)) == normalize(expected), "README: iex> #{expr}\n#{out}"
    end
  end

  # The session's segment and CLI, as this test runs them.
  defp substitute(expr, seg) do
    expr
    |> String.replace("\"/gw-sessions\"", inspect(seg))
    |> String.replace("\"../../build/connreg\"", inspect(cli()))
  end

  # [{expression, expected output}] from the block after the marker.
  defp session(readme) do
    [_, after_marker] = String.split(readme, @marker, parts: 2)
    [_, block, _] = String.split(after_marker, "```", parts: 3)

    block
    |> String.split("\n", trim: true)
    |> Enum.drop_while(&(not String.starts_with?(&1, "iex> ")))
    |> Enum.chunk_while(
      nil,
      fn
        "iex> " <> expr, nil -> {:cont, {expr, []}}
        "iex> " <> expr, {prev, out} -> {:cont, {prev, Enum.join(Enum.reverse(out), "\n")}, {expr, []}}
        line, {prev, out} -> {:cont, {prev, [line | out]}}
      end,
      fn {prev, out} -> {:cont, {prev, Enum.join(Enum.reverse(out), "\n")}, nil} end
    )
  end

  # Pids, references and transports (which carry the boot's random tag) differ per run.
  defp normalize(text) do
    text
    |> String.replace(~r/#PID<\d+\.\d+\.\d+>/, "#PID<>")
    |> String.replace(~r/#Reference<[\d.]+>/, "#Reference<>")
    |> String.replace(~r/\d{12,}/, "N")
  end
end
