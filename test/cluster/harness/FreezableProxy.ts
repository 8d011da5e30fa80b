import * as net from "node:net"

/**
 * A TCP proxy in front of the API server that can be frozen like a network partition:
 * while frozen, bytes in either direction are dropped and connections stay open (no reset,
 * so the client learns nothing until its own timeouts); new connections are accepted and
 * hang. Thawing resets every connection that lived through the freeze (their TLS streams
 * lost bytes) and forwards new ones again. The operator under test talks through it.
 */
export interface FreezableProxy {
  /** https://127.0.0.1:<port>, for a kubeconfig. */
  readonly url: string
  readonly freeze: () => void
  readonly thaw: () => void
  readonly close: () => Promise<void>
}

export const startFreezableProxy = async (upstream: string): Promise<FreezableProxy> => {
  const target = new URL(upstream)
  let frozen = false
  const open = new Set<{ readonly client: net.Socket; upstream: net.Socket | undefined; sawFreeze: boolean }>()

  const server = net.createServer((client) => {
    const connection = { client, upstream: undefined as net.Socket | undefined, sawFreeze: frozen }
    open.add(connection)
    const closeBoth = () => {
      open.delete(connection)
      client.destroy()
      connection.upstream?.destroy()
    }
    client.on("error", closeBoth)
    client.on("close", closeBoth)
    const pending: Array<Buffer> = []
    client.on("data", (chunk: Buffer) => {
      if (frozen || connection.sawFreeze) return
      if (connection.upstream === undefined) pending.push(chunk)
      else connection.upstream.write(chunk)
    })
    if (frozen) return
    const socket = net.connect({ host: target.hostname, port: Number(target.port) }, () => {
      for (const chunk of pending.splice(0)) socket.write(chunk)
    })
    connection.upstream = socket
    socket.on("data", (chunk: Buffer) => {
      if (!frozen && !connection.sawFreeze) client.write(chunk)
    })
    socket.on("error", closeBoth)
    socket.on("close", closeBoth)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as net.AddressInfo).port

  return {
    url: `https://127.0.0.1:${port}`,
    freeze: () => {
      frozen = true
      for (const connection of open) connection.sawFreeze = true
    },
    thaw: () => {
      frozen = false
      for (const connection of [...open]) {
        if (!connection.sawFreeze) continue
        open.delete(connection)
        connection.client.destroy()
        connection.upstream?.destroy()
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const connection of open) {
          connection.client.destroy()
          connection.upstream?.destroy()
        }
        open.clear()
        server.close(() => resolve())
      })
  }
}
