import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { StructuredData } from "../src/crawl/extract-structured-data.ts";
import { valuesFromStructuredData } from "../src/crawl/extract-structured-values.ts";
import { extractPageContent } from "../src/crawl/page-content.ts";
import type { OutputSpec, OutputType } from "../src/core/output-types.ts";

/**
 * valuesFromStructuredData: schema.org properties mapped to output columns with typed values, a
 * confidence and the property they came from; a value that does not convert exactly to the
 * column's type is refused.
 */

function structuredOf(name: string, url: string): StructuredData {
  const html = readFileSync(new URL(`./fixtures/pages/${name}.html`, import.meta.url), "utf8");
  return extractPageContent(html, url).structured;
}

function out(name: string, type: OutputType, description = ""): OutputSpec {
  return { name, type, description };
}

function jsonLd(...nodes: Record<string, unknown>[]): StructuredData {
  return { jsonLd: nodes, jsonLdErrors: 0, microdata: [], openGraph: {}, meta: {} };
}

const org = (props: Record<string, unknown>) => jsonLd({ "@type": "Organization", ...props });

describe("organisation page (JSON-LD @graph)", () => {
  const structured = structuredOf("organisation", "https://acme.example/about");

  it("fills the company columns with typed values, confidences and source paths", () => {
    const values = valuesFromStructuredData(structured, [
      out("name", "text"),
      out("industry", "text", "Primary industry"),
      out("employees", "integer", "Approximate headcount"),
      out("founded", "integer", "Year founded"),
      out("founding_date", "date"),
      out("city", "text"),
      out("country", "text"),
      out("address", "text"),
      out("email", "text"),
      out("phone", "text"),
      out("website", "text"),
      out("description", "text"),
      out("social_links", "text[]"),
    ]);
    const o = { origin: "json-ld", schemaType: "Organization" };
    expect(values).toEqual({
      name: { ...o, value: "Acme Robotics", confidence: 0.95, path: "name" },
      industry: {
        ...o,
        value: "Warehouse automation, Robotics",
        confidence: 0.8,
        path: "knowsAbout",
      },
      employees: { ...o, value: 120, confidence: 0.95, path: "numberOfEmployees.value" },
      founded: { ...o, value: 1998, confidence: 0.8, path: "foundingDate" },
      founding_date: { ...o, value: "1998-05-01", confidence: 0.95, path: "foundingDate" },
      city: { ...o, value: "Hamburg", confidence: 0.95, path: "address.addressLocality" },
      country: { ...o, value: "DE", confidence: 0.8, path: "address.addressCountry.name" },
      address: {
        ...o,
        value: "Hafenstraße 12, 20457 Hamburg, DE",
        confidence: 0.8,
        path: "address",
      },
      email: { ...o, value: "info@acme.example", confidence: 0.8, path: "email" },
      phone: { ...o, value: "+49 40 1234567", confidence: 0.95, path: "telephone" },
      website: { ...o, value: "https://acme.example/", confidence: 0.95, path: "url" },
      description: {
        ...o,
        value: "Acme Robotics designs and builds autonomous mobile robots for warehouses.",
        confidence: 0.95,
        path: "description",
      },
      social_links: {
        ...o,
        value: ["https://www.linkedin.com/company/acme-robotics", "https://github.com/acme"],
        confidence: 0.95,
        path: "sameAs",
      },
    });
    // The WebSite node's name ("Acme Robotics website") is not the company's.
    expect(typeof values.employees!.value).toBe("number");
  });

  it("reads the product's offer, brand and sku", () => {
    const values = valuesFromStructuredData(structured, [
      out("product_name", "text"),
      out("price", "numeric"),
      out("currency", "text"),
      out("brand", "text"),
      out("sku", "text"),
    ]);
    const p = { origin: "json-ld", schemaType: "Product" };
    expect(values).toEqual({
      product_name: { ...p, value: "Acme Picker 3", confidence: 0.95, path: "name" },
      price: { ...p, value: 48900, confidence: 0.8, path: "offers.price" }, // "48900.00"
      currency: { ...p, value: "EUR", confidence: 0.95, path: "offers.priceCurrency" },
      brand: { ...p, value: "Acme", confidence: 0.95, path: "brand.name" },
      sku: { ...p, value: "AP-3", confidence: 0.95, path: "sku" },
    });
  });

  it("leaves a column it has no property for empty, whatever its description says", () => {
    const values = valuesFromStructuredData(structured, [
      out("ceo", "text", "Name of the CEO"),
      out("revenue", "numeric", "Annual revenue"),
    ]);
    expect(values).toEqual({});
  });
});

describe("restaurant page (microdata)", () => {
  const structured = structuredOf("restaurant", "https://lucia.example/");

  it("maps the LocalBusiness properties; microdata text converted to numbers is mapped", () => {
    const values = valuesFromStructuredData(structured, [
      out("name", "text"),
      out("cuisine", "text[]"),
      out("price_range", "text"),
      out("opening_hours", "text[]"),
      out("rating", "numeric"),
      out("review_count", "integer"),
      out("city", "text"),
      out("founded", "integer"),
    ]);
    const r = { origin: "microdata", schemaType: "Restaurant" };
    expect(values).toEqual({
      name: { ...r, value: "Trattoria Lucia", confidence: 0.95, path: "name" },
      cuisine: { ...r, value: ["Italian", "Pizza"], confidence: 0.95, path: "servesCuisine" },
      price_range: { ...r, value: "££", confidence: 0.95, path: "priceRange" },
      opening_hours: {
        ...r,
        value: ["Tu-Fr 12:00-22:00", "Sa-Su 11:00-23:00"],
        confidence: 0.95,
        path: "openingHours",
      },
      rating: { ...r, value: 4.6, confidence: 0.8, path: "aggregateRating.ratingValue" },
      review_count: { ...r, value: 212, confidence: 0.8, path: "aggregateRating.reviewCount" },
      city: { ...r, value: "Bristol", confidence: 0.95, path: "address.addressLocality" },
      founded: { ...r, value: 2009, confidence: 0.8, path: "foundingDate" },
    });
  });

  it("follows hints, and refuses a hinted value that is not exactly an integer", () => {
    const values = valuesFromStructuredData(
      structured,
      [out("seats", "integer"), out("opened", "date"), out("capacity_note", "text")],
      {
        seats: ["maximumAttendeeCapacity"], // "about 60"
        opened: ["Restaurant.foundingDate"],
        capacity_note: ["Organization.maximumAttendeeCapacity", "maximumAttendeeCapacity"],
      },
    );
    expect(values).toEqual({
      opened: {
        value: "2009-03-14",
        confidence: 0.95,
        origin: "microdata",
        schemaType: "Restaurant",
        path: "foundingDate",
      },
      capacity_note: {
        value: "about 60",
        confidence: 0.95,
        origin: "microdata",
        schemaType: "Restaurant",
        path: "maximumAttendeeCapacity",
      },
    });
  });
});

describe("article page (OpenGraph and meta)", () => {
  const structured = structuredOf("article", "https://courier.example/a");

  it("answers text columns from OpenGraph and meta at 0.6", () => {
    const values = valuesFromStructuredData(
      structured,
      [
        out("title", "text"),
        out("description", "text"),
        out("keywords", "text[]"),
        out("author", "text"),
        out("published", "timestamptz"),
        out("published_on", "date"),
        out("summary", "text"),
        out("name", "text"),
        out("employees", "integer"),
      ],
      { published_on: ["article:published_time"], summary: ["meta:description"] },
    );
    expect(values).toEqual({
      title: {
        value: "Harbour city bets on electric ferries",
        confidence: 0.6,
        origin: "opengraph",
        path: "og:title",
      },
      description: {
        value: "Six electric ferries will replace the diesel fleet by 2027.",
        confidence: 0.6,
        origin: "opengraph",
        path: "og:description",
      },
      keywords: {
        value: ["ferries", "electric", "transport", "harbour"],
        confidence: 0.6,
        origin: "meta",
        path: "keywords",
      },
      author: { value: "Mira Jensen", confidence: 0.6, origin: "meta", path: "author" },
      published: {
        value: "2024-03-18T07:30:00+01:00",
        confidence: 0.6,
        origin: "meta",
        path: "article:published_time",
      },
      published_on: {
        value: "2024-03-18",
        confidence: 0.6,
        origin: "meta",
        path: "article:published_time",
      },
      summary: {
        value: "The city will replace its diesel ferry fleet with electric boats by 2027.",
        confidence: 0.6,
        origin: "meta",
        path: "description",
      },
      // Neither og:site_name (the publisher) nor anything else answers `name` or `employees`.
    });
  });
});

describe("exact conversions only", () => {
  const one = (
    structured: StructuredData,
    type: OutputType,
    name = "employees",
    description = "",
  ) => valuesFromStructuredData(structured, [out(name, type, description)])[name];

  it("integers: numbers and integer strings, never prose, fractions or ranges", () => {
    expect(one(org({ numberOfEmployees: 120 }), "integer")).toMatchObject({
      value: 120,
      confidence: 0.95,
      path: "numberOfEmployees",
    });
    expect(one(org({ numberOfEmployees: "120" }), "integer")).toMatchObject({
      value: 120,
      confidence: 0.8,
    });
    expect(one(org({ numberOfEmployees: " 120.0 " }), "integer")).toMatchObject({ value: 120 });
    for (const refused of ["about 120", "120+", "1,200", "120.5", "51-200", "", "1e400"]) {
      expect(one(org({ numberOfEmployees: refused }), "integer"), refused).toBeUndefined();
    }
    expect(one(org({ numberOfEmployees: 120.5 }), "integer")).toBeUndefined();
    expect(one(org({ numberOfEmployees: [120, 130] }), "integer")).toBeUndefined();
    expect(one(org({ numberOfEmployees: true }), "integer")).toBeUndefined();
  });

  it("QuantitativeValue: value, or equal bounds; a range only as text", () => {
    const range = org({
      numberOfEmployees: { "@type": "QuantitativeValue", minValue: 100, maxValue: 500 },
    });
    expect(one(range, "integer")).toBeUndefined();
    expect(one(range, "numeric")).toBeUndefined();
    expect(one(range, "text")).toMatchObject({ value: "100–500", confidence: 0.8 });
    const same = org({
      numberOfEmployees: { "@type": "QuantitativeValue", minValue: 80, maxValue: 80 },
    });
    expect(one(same, "integer")).toMatchObject({
      value: 80,
      confidence: 0.8,
      path: "numberOfEmployees.minValue",
    });
    const lowerBound = org({ numberOfEmployees: { "@type": "QuantitativeValue", minValue: 10 } });
    expect(one(lowerBound, "integer")).toBeUndefined();
  });

  it("years from ISO dates only for year columns", () => {
    const founded = org({ foundingDate: "1998-05-01" });
    expect(one(founded, "integer", "founded")).toMatchObject({ value: 1998, confidence: 0.8 });
    expect(one(founded, "integer", "founded", "Year founded")).toMatchObject({ value: 1998 });
    // A column with no year in its name or description does not turn a date into a number.
    const hinted = valuesFromStructuredData(founded, [out("started", "integer")], {
      started: ["foundingDate"],
    });
    expect(hinted).toEqual({});
    const described = valuesFromStructuredData(
      founded,
      [out("started", "integer", "The year the company started")],
      { started: ["foundingDate"] },
    );
    expect(described.started).toMatchObject({ value: 1998, path: "foundingDate" });
    expect(one(org({ foundingDate: "1998" }), "integer", "founded")).toMatchObject({
      value: 1998,
      confidence: 0.8,
    });
    expect(one(org({ foundingDate: 1998 }), "integer", "founded")).toMatchObject({
      value: 1998,
      confidence: 0.95,
    });
    expect(one(org({ foundingDate: "1998-13-01" }), "integer", "founded")).toBeUndefined();
    expect(one(org({ foundingDate: "late 1990s" }), "integer", "founded")).toBeUndefined();
    expect(one(org({ foundingDate: "May 1998" }), "integer", "founded")).toBeUndefined();
  });

  it("dates and timestamps from ISO strings only", () => {
    const date = (value: unknown) => one(org({ foundingDate: value }), "date", "founding_date");
    expect(date("1998-05-01")).toMatchObject({ value: "1998-05-01", confidence: 0.95 });
    expect(date("1998-05-01T10:00:00Z")).toMatchObject({ value: "1998-05-01", confidence: 0.8 });
    for (const refused of ["1998", "1998-05", "01/05/1998", "May 1, 1998", "1998-02-30"]) {
      expect(date(refused), refused).toBeUndefined();
    }
    const stamp = (value: string) =>
      valuesFromStructuredData(jsonLd({ "@type": "NewsArticle", datePublished: value }), [
        out("published", "timestamptz"),
      ]).published;
    expect(stamp("2024-03-18T07:30:00+01:00")).toMatchObject({
      value: "2024-03-18T07:30:00+01:00",
      confidence: 0.95,
      schemaType: "NewsArticle",
    });
    expect(stamp("2024-03-18T07:30:00")).toBeUndefined(); // no offset: which instant?
    expect(stamp("2024-03-18")).toBeUndefined();
  });

  it("numbers, booleans, text and jsonb", () => {
    const product = (offers: unknown) => jsonLd({ "@type": "Product", name: "P", offers });
    expect(one(product({ price: 19.99 }), "numeric", "price")).toMatchObject({
      value: 19.99,
      confidence: 0.95,
    });
    expect(one(product([{ price: "19.99" }]), "numeric", "price")).toMatchObject({
      value: 19.99,
      confidence: 0.8,
    });
    expect(one(product({ price: "$19.99" }), "numeric", "price")).toBeUndefined();
    expect(one(product({ price: "19,99" }), "numeric", "price")).toBeUndefined();

    const flags = (value: unknown) =>
      valuesFromStructuredData(jsonLd({ "@type": "Organization", isAccessible: value }), [
        out("is_accessible", "boolean"),
      ]).is_accessible;
    expect(flags(true)).toMatchObject({ value: true, confidence: 0.95, path: "isAccessible" });
    expect(flags("https://schema.org/False")).toMatchObject({ value: false, confidence: 0.8 });
    expect(flags("yes")).toBeUndefined();

    const address = { "@type": "PostalAddress", addressLocality: "Lyon" };
    expect(one(org({ address }), "jsonb", "address")).toMatchObject({
      value: address,
      confidence: 0.95,
    });
    expect(one(org({ address }), "integer", "address")).toBeUndefined();
    expect(one(org({ telephone: "  " }), "text", "phone")).toBeUndefined();
  });
});

describe("which node answers", () => {
  it("the page's main entity before another organisation, and @id references resolved", () => {
    const structured = jsonLd(
      { "@type": "Organization", "@id": "#publisher", name: "Daily Paper", numberOfEmployees: 900 },
      { "@type": "WebPage", mainEntity: { "@id": "#subject" } },
      { "@type": "Corporation", "@id": "#subject", name: "Subject Corp", address: { "@id": "#a" } },
      { "@type": "PostalAddress", "@id": "#a", addressLocality: "Oslo" },
    );
    const values = valuesFromStructuredData(structured, [
      out("name", "text"),
      out("city", "text"),
      out("employees", "integer"),
    ]);
    expect(values.name).toMatchObject({ value: "Subject Corp", schemaType: "Corporation" });
    expect(values.city).toMatchObject({ value: "Oslo", path: "address.addressLocality" });
    // The publisher's headcount is not the subject's.
    expect(values.employees).toBeUndefined();
    // An explicit hint may still read any node.
    const hinted = valuesFromStructuredData(structured, [out("employees", "integer")], {
      employees: ["Organization.numberOfEmployees"],
    });
    expect(hinted.employees).toMatchObject({ value: 900, schemaType: "Organization" });
  });

  it("an article's publisher is not the organisation the page is about", () => {
    const structured = jsonLd({
      "@type": "NewsArticle",
      headline: "Acme raises funds",
      publisher: { "@type": "Organization", name: "Daily Paper" },
    });
    structured.openGraph["og:site_name"] = "Daily Paper";
    const values = valuesFromStructuredData(structured, [
      out("name", "text"),
      out("title", "text"),
    ]);
    expect(values).toEqual({
      title: {
        value: "Acme raises funds",
        confidence: 0.95,
        origin: "json-ld",
        schemaType: "NewsArticle",
        path: "headline",
      },
    });
  });

  it("a column named like a schema.org property of an entity is read directly", () => {
    const structured = jsonLd({ "@type": "Organization", slogan: "Move more", vatID: "DE123" });
    const values = valuesFromStructuredData(structured, [
      out("slogan", "text"),
      out("vat_id", "text"),
    ]);
    expect(values.slogan).toMatchObject({ value: "Move more", confidence: 0.95, path: "slogan" });
    expect(values.vat_id).toMatchObject({ value: "DE123", path: "vatID" });
  });

  it("hints come first, with a type filter, and fall through when they find nothing", () => {
    const structured = jsonLd(
      { "@type": "Organization", name: "Acme", numberOfEmployees: { value: "120" } },
      { "@type": "Organization", name: "Other", numberOfEmployees: 7 },
    );
    const values = valuesFromStructuredData(
      structured,
      [out("employees", "integer"), out("name", "text")],
      { employees: ["numberOfEmployees.value"], name: ["Person.name"] },
    );
    expect(values.employees).toMatchObject({
      value: 120,
      confidence: 0.8,
      path: "numberOfEmployees.value",
    });
    expect(values.name).toMatchObject({ value: "Acme", confidence: 0.95, path: "name" });
  });
});
