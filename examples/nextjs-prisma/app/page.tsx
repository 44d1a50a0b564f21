import { revalidatePath } from "next/cache";
import { Prisma } from "@prisma/client";
import { prisma } from "@/lib/prisma";

// Notes change with every visit, and the database is not reachable (nor its
// tables created) while the app builds, so never prerender this page.
export const dynamic = "force-dynamic";

async function addNote(formData: FormData) {
  "use server";
  const text = String(formData.get("text") ?? "").trim().slice(0, 280);
  if (!text) return;
  await prisma.note.create({ data: { text } });
  revalidatePath("/");
}

// A fresh Prisma Postgres database has no tables until the schema is pushed;
// say so on the page rather than failing the request.
async function loadNotes() {
  try {
    const notes = await prisma.note.findMany({ orderBy: { createdAt: "desc" }, take: 50 });
    return { notes, schemaMissing: false };
  } catch (err) {
    if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2021") {
      return { notes: [], schemaMissing: true };
    }
    throw err;
  }
}

export default async function Home() {
  const { notes, schemaMissing } = await loadNotes();
  const title = process.env.APP_TITLE ?? "Notes";

  return (
    <main>
      <h1>{title}</h1>
      {schemaMissing ? (
        <p>
          The database has no <code>Note</code> table yet. Run <code>npx prisma db push</code> with this
          project&apos;s <code>DATABASE_URL</code> to create it.
        </p>
      ) : (
        <>
          <form action={addNote} style={{ display: "flex", gap: "0.5rem" }}>
            <input name="text" placeholder="Write a note" maxLength={280} required style={{ flex: 1 }} />
            <button type="submit">Add</button>
          </form>
          {notes.length === 0 ? (
            <p>No notes yet.</p>
          ) : (
            <ul>
              {notes.map((note) => (
                <li key={note.id}>
                  {note.text} <small>{note.createdAt.toISOString()}</small>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </main>
  );
}
