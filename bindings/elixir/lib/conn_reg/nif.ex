defmodule ConnReg.Nif do
  @moduledoc false
  # The NIF functions (c_src/connreg_nif.c). Use ConnReg instead: it checks
  # arguments and loops `wait_slice/4` for `ConnReg.wait/4`.

  @on_load :load_nif

  def load_nif do
    path = :filename.join(:code.priv_dir(:connreg), ~c"connreg_nif")

    case :erlang.load_nif(path, 0) do
      :ok -> :ok
      {:error, {:reload, _}} -> :ok
      {:error, reason} -> {:error, reason}
    end
  end

  defp nif_error, do: :erlang.nif_error(:connreg_nif_not_loaded)

  def create(_name, _capacity, _key_max, _mode, _max_threads, _flags), do: nif_error()
  def open_or_create(_name, _capacity, _key_max, _mode, _max_threads, _flags), do: nif_error()
  def open(_name), do: nif_error()
  def close(_handle), do: nif_error()
  def unlink(_name), do: nif_error()
  def register(_handle, _id, _transport), do: nif_error()
  def get(_handle, _id), do: nif_error()
  def update(_handle, _id, _transport), do: nif_error()
  def cas(_handle, _id, _expected, _desired), do: nif_error()
  def unregister(_handle, _id), do: nif_error()
  def wait_slice(_handle, _id, _seen, _timeout_ms), do: nif_error()
  def get_bulk(_handle, _ids), do: nif_error()
  def to_list(_handle), do: nif_error()
  def check(_handle), do: nif_error()
  def stats(_handle), do: nif_error()
  def strerror(_rc), do: nif_error()
end
