import { createServer } from "node:net"

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it, the listener is
 * closed, and the caller binds it next. Ports handed out by this process are never given
 * twice, so components started together do not collide.
 */
export const freePort = (taken: Set<number> = new Set()): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => {
        if (port === 0 || taken.has(port)) {
          freePort(taken).then(resolve, reject)
          return
        }
        taken.add(port)
        resolve(port)
      })
    })
  })
